using CsCheck;
using MoeSharp.Collectives;
using MoeSharp.Compute;
using MoeSharp.Cuda.Kernels;
using MoeSharp.Dispatch;
using MoeSharp.Quantization;
using MoeSharp.Tensors;
using MoeSharp.Testing;
using MoeSharp.Verification;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// The ILGPU FP8 wire-row kernels (<see cref="IlgpuFp8RowKernels"/>) on ILGPU's CPU accelerator: the golden fp8 files'
/// codes and scales in the wire layout, the host's bits on random rows with special values (NaN, ±Infinity, signed
/// zeros, float32 subnormals, values near float32's maximum), and an FP8 dispatch through the device dispatchers equal
/// to the host's, at EP 1 and over two in-process ranks. On a real GPU (skipped elsewhere) the same bits on CUDA.
/// </summary>
[Collection(CpuBackendCollection.Name)]
public class Fp8RowKernelTests(CpuBackendFixture fixture)
{
    private IlgpuMoeKernels Device => fixture.Backend.Kernels;

    [Fact]
    public void GoldenFiles_QuantiseBitwise_AndDequantiseAsTheHost()
    {
        int blocks = 0;
        foreach (Fp8GoldenBlock block in Fp8GoldenRows.Blocks())
        {
            Tensor wire = QuantizeOnDevice(block.X);
            string? mismatch = Fp8GoldenRows.WireMismatch(block, wire.AsSpan<int>());
            Assert.True(mismatch is null, mismatch);
            AssertDequantiseMatchesHost(block.Name, wire, block.X.RowLength);
            blocks++;
        }
        Assert.True(blocks >= 2, $"only {blocks} golden blocks");
    }

    [Fact]
    public void RandomRows_WithSpecialValues_GiveTheHostsBits()
    {
        Gen.Select(Gen.Int[1, 12], Gen.OneOfConst(1, 5, 127, 128, 129, 300), Gen.Bool, Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (rows, dim, bf16, seed) =>
                {
                    Tensor x = SpecialRows(new Random(seed), rows, dim);
                    if (bf16)
                        x = x.ToBFloat16();
                    var hostWire = Tensor.Zeros(DType.Int32, rows, Fp8WireRows.WordsPerRow(dim));
                    HostFp8RowKernels.Instance.QuantizeRows(x, hostWire);
                    Tensor wire = QuantizeOnDevice(x);
                    Assert.True(
                        hostWire.BitwiseEquals(wire),
                        $"rows {rows}, D {dim}, {x.DType}, seed {seed}: wire rows differ"
                    );
                    AssertDequantiseMatchesHost($"rows {rows}, D {dim}, seed {seed}", wire, dim);
                },
                iter: 60,
                threads: 1
            );
    }

    [Theory]
    [InlineData(1, false, false)]
    [InlineData(1, true, true)]
    [InlineData(2, false, true)]
    [InlineData(2, true, false)]
    public void Fp8Dispatch_OnTheDevice_EqualsTheHost(int world, bool bf16, bool scoreBefore)
    {
        const int tokens = 37,
            dim = 200,
            experts = 4,
            k = 2;
        var config = new TokenDispatcherConfig(experts, k)
        {
            ScoreBeforeExperts = scoreBefore,
            ExpertAlignment = 4,
            WireFormat = RowWireFormat.Fp8E4M3,
        };
        var random = new Random(world * 10 + (bf16 ? 1 : 0));
        GroupInputs[] inputs = Enumerable
            .Range(0, world)
            .Select(_ =>
                RandomInputs
                    .Create(random, tokens, dim, experts, k, DType.Int32)
                    .WithRowType(bf16 ? DType.BFloat16 : DType.Float32)
            )
            .ToArray();
        var kernels = Enumerable
            .Range(0, world)
            .Select(_ => new IlgpuMoeKernels(fixture.Backend.Accelerator))
            .ToArray();
        try
        {
            Tensor[][] Run(bool onDevice) =>
                InProcessWorld.Run(
                    world,
                    group =>
                    {
                        IlgpuMoeKernels mine = kernels[group.Rank];
                        Func<Tensor, Tensor> put = onDevice ? mine.Device.ToDevice : t => t;
                        IProcessGroup wrapped = onDevice ? new HostStagedProcessGroup(group) : group;
                        using var groups = ParallelGroups.Create(wrapped, 1);
                        var dispatcher = new AllToAllTokenDispatcher(config, groups, onDevice ? mine : null);
                        GroupInputs g = inputs[group.Rank];
                        Tensor x = put(g.X);
                        DispatchResult d = dispatcher.Dispatch(x, put(g.Scores), put(g.Ids));
                        Tensor routed = d.RoutedTokens.ToHost();
                        Tensor output = dispatcher.Combine(put(routed), d.Metadata, x);
                        return new[] { routed, output.ToHost() };
                    },
                    TimeSpan.FromSeconds(60)
                );
            Tensor[][] host = Run(false),
                device = Run(true);
            for (int r = 0; r < world; r++)
            {
                Assert.True(host[r][0].BitwiseEquals(device[r][0]), $"rank {r}: routed rows differ");
                Assert.True(host[r][1].BitwiseEquals(device[r][1]), $"rank {r}: combine outputs differ");
            }
        }
        finally
        {
            foreach (IlgpuMoeKernels k1 in kernels)
                k1.Dispose();
        }
    }

    [Theory]
    [InlineData(nameof(Fp8RowKernelBodies.Quantize), false)]
    [InlineData(nameof(Fp8RowKernelBodies.Quantize), true)]
    [InlineData(nameof(Fp8RowKernelBodies.Dequantize), false)]
    [InlineData(nameof(Fp8RowKernelBodies.Dequantize), true)]
    public void Kernels_CompileToPtx_WithNoFloat32Arithmetic(string kernel, bool bfloat16)
    {
        // Offline PTX (no GPU): the CUDA backend compiles them, calls into the core library included, and every
        // product is an exact float64 multiply rounded once (cvt.rn.f32.f64), so ptxas has nothing to contract.
        Type[] arguments = bfloat16
            ? [typeof(ushort), typeof(BFloat16DeviceRow)]
            : [typeof(float), typeof(Float32DeviceRow)];
        string ptx = PtxContractionTests.Ptx(kernel, typeof(Fp8RowKernelBodies), arguments);
        string[] float32 = PtxContractionTests.FloatArithmetic(ptx);
        Assert.True(float32.Length == 0, string.Join(", ", float32));
        Assert.Matches(@"\bmul(\.rn)?\.f64\b", ptx);
        Assert.Contains("cvt.rn.f32.f64", ptx);
    }

    [Fact]
    public void ProfiledDeviceKernels_RunTheDevicesFp8Kernels()
    {
        GroupInputs g = RandomInputs.Create(new Random(9), 40, 200, 8, 2, DType.Int32);
        var config = new TokenDispatcherConfig(8, 2) { WireFormat = RowWireFormat.Fp8E4M3 };
        var profiled = new ProfilingMoeKernels(Device);
        DispatchResult host = new LocalTokenDispatcher(config).Dispatch(g.X, g.Scores, g.Ids);
        DispatchResult dev = new LocalTokenDispatcher(config, profiled).Dispatch(
            Device.Device.ToDevice(g.X),
            Device.Device.ToDevice(g.Scores),
            Device.Device.ToDevice(g.Ids)
        );
        Assert.True(host.RoutedTokens.BitwiseEquals(dev.RoutedTokens.ToHost()));
        Assert.Equal(1, profiled.Totals["QuantizeRows"].Calls);
    }

    [CudaFact]
    public void OnCuda_SpecialRows_AndAnFp8Dispatch_GiveTheHostsBits()
    {
        using IlgpuBackend cuda = IlgpuBackend.CreateCuda(0);
        var random = new Random(18);
        foreach (int dim in new[] { 1, 129, 7168 })
        {
            foreach (bool bf16 in new[] { false, true })
            {
                Tensor x = SpecialRows(random, 64, dim);
                if (bf16)
                    x = x.ToBFloat16();
                var hostWire = Tensor.Zeros(DType.Int32, x.Rows, Fp8WireRows.WordsPerRow(dim));
                HostFp8RowKernels.Instance.QuantizeRows(x, hostWire);
                Assert.True(hostWire.BitwiseEquals(QuantizeOn(cuda.Kernels, x)), $"D {dim}, {x.DType}: wire rows");
                AssertDequantiseMatchesHost(cuda.Kernels, $"D {dim}", hostWire, dim);
            }
        }
        GroupInputs g = RandomInputs.Create(random, 300, 200, 16, 4, DType.Int32).WithRowType(DType.BFloat16);
        var config = new TokenDispatcherConfig(16, 4) { ExpertAlignment = 16, WireFormat = RowWireFormat.Fp8E4M3 };
        DispatchResult host = new LocalTokenDispatcher(config).Dispatch(g.X, g.Scores, g.Ids);
        IlgpuMoeKernels k = cuda.Kernels;
        DispatchResult dev = new LocalTokenDispatcher(config, k).Dispatch(
            k.Device.ToDevice(g.X),
            k.Device.ToDevice(g.Scores),
            k.Device.ToDevice(g.Ids)
        );
        Assert.True(host.RoutedTokens.BitwiseEquals(dev.RoutedTokens.ToHost()), "FP8 routed rows differ on CUDA");
    }

    private Tensor QuantizeOnDevice(Tensor x) => QuantizeOn(Device, x);

    private static Tensor QuantizeOn(IlgpuMoeKernels kernels, Tensor x)
    {
        Tensor wire = kernels.Device.Allocator.Rent(DType.Int32, x.Rows, Fp8WireRows.WordsPerRow(x.RowLength));
        kernels.QuantizeRows(kernels.Device.ToDevice(x), wire);
        return wire.ToHost();
    }

    private void AssertDequantiseMatchesHost(string name, Tensor hostWire, int dim) =>
        AssertDequantiseMatchesHost(Device, name, hostWire, dim);

    private static void AssertDequantiseMatchesHost(IlgpuMoeKernels kernels, string name, Tensor hostWire, int dim)
    {
        foreach (DType type in new[] { DType.Float32, DType.BFloat16 })
        {
            var expected = Tensor.Zeros(type, hostWire.Rows, dim);
            HostFp8RowKernels.Instance.DequantizeRows(hostWire, expected);
            Tensor back = kernels.Device.Allocator.Rent(type, hostWire.Rows, dim);
            kernels.DequantizeRows(kernels.Device.ToDevice(hostWire), back);
            Assert.True(expected.BitwiseEquals(back.ToHost()), $"{name}: dequantised {type} differs from the host");
        }
    }

    /// <summary>
    /// Values over many binades, with NaN, ±Infinity, ±0, float32 subnormals and near-maximum values.
    /// </summary>
    private static Tensor SpecialRows(Random random, int rows, int dim)
    {
        float[] specials =
        [
            float.NaN,
            -float.NaN,
            float.PositiveInfinity,
            float.NegativeInfinity,
            0f,
            -0f,
            float.Epsilon,
            -3 * float.Epsilon,
            float.MaxValue,
            -float.MaxValue * 0.97f,
            448f,
            464f,
        ];
        var values = new float[rows * dim];
        int binade = random.Next(-140, 120);
        for (int i = 0; i < values.Length; i++)
        {
            values[i] =
                random.Next(10) == 0
                    ? specials[random.Next(specials.Length)]
                    : (float)((random.NextDouble() * 2 - 1) * Math.Pow(2, binade + random.Next(-12, 4)));
        }
        return Tensor.FromArray(values, rows, dim);
    }
}
