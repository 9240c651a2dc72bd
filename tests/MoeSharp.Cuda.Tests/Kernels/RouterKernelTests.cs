using CsCheck;
using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// Router and SwiGLU kernels on ILGPU's CPU accelerator: bitwise equal to the host functions (the CPU accelerator
/// runs .NET's exp); top-k against an independent definition (sort by biased score descending, NaN last, ties by
/// lower id; ids ascending).
/// </summary>
[Collection(CpuBackendCollection.Name)]
public class RouterKernelTests(CpuBackendFixture fixture)
{
    private readonly IlgpuBackend _b = fixture.Backend;

    private static float[] Random(Random r, int n) =>
        Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 8 - 4)).ToArray();

    [Fact]
    public void SoftmaxSigmoidSwiGlu_MatchHostBitwise()
    {
        Gen.Select(Gen.Int[0, 20], Gen.Int[1, 12], Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (tokens, experts, seed) =>
                {
                    var r = new Random(seed);
                    float[] z = Random(r, tokens * experts),
                        u = Random(r, tokens * experts);
                    var expected = new float[z.Length];
                    Tensor dz = _b.Kernels.Device.ToDevice(Tensor.FromArray(z, tokens, experts)),
                        du = _b.Kernels.Device.ToDevice(Tensor.FromArray(u, tokens, experts));
                    Tensor output = _b.Allocator.Rent(DType.Float32, tokens, experts);

                    HostScoreFunctions.Softmax(z, expected, experts);
                    _b.Router.Softmax(dz, output);
                    Assert.Equal(expected, output.ToHost().AsSpan<float>().ToArray());

                    HostScoreFunctions.Sigmoid(z, expected);
                    _b.Router.Sigmoid(dz, output);
                    Assert.Equal(expected, output.ToHost().AsSpan<float>().ToArray());

                    HostSwiGlu.Forward(z, u, expected);
                    _b.Experts.SwiGluForward(dz, du, output);
                    Assert.Equal(expected, output.ToHost().AsSpan<float>().ToArray());
                },
                iter: 40,
                threads: 1
            );
    }

    [Fact]
    public void TopK_ChoosesLargestBiased_TiesTowardLowerId_IdsAscending()
    {
        Gen.Select(Gen.Int[0, 20], Gen.Int[1, 10], Gen.Int[1, 10], Gen.Bool, Gen.Bool, Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (tokens, experts, kPick, biased, norm, seed) =>
                {
                    int k = Math.Min(kPick, experts);
                    var r = new Random(seed);
                    // Few distinct values, so ties are common; an occasional NaN ranks last.
                    float[] s = Enumerable
                        .Range(0, tokens * experts)
                        .Select(_ => r.Next(12) == 0 ? float.NaN : r.Next(4) / 4f)
                        .ToArray();
                    float[]? bias = biased ? Enumerable.Range(0, experts).Select(_ => r.Next(3) / 8f).ToArray() : null;
                    Tensor top = _b.Allocator.Rent(DType.Float32, tokens, k),
                        ids = _b.Allocator.Rent(DType.Int64, tokens, k);
                    _b.Router.TopK(
                        _b.Kernels.Device.ToDevice(Tensor.FromArray(s, tokens, experts)),
                        bias is null ? null : _b.Kernels.Device.ToDevice(Tensor.FromArray(bias, experts)),
                        top,
                        ids,
                        norm,
                        1e-20f,
                        2.5f
                    );
                    long[] gotIds = ids.ToHost().AsSpan<long>().ToArray();
                    float[] gotTop = top.ToHost().AsSpan<float>().ToArray();
                    for (int t = 0; t < tokens; t++)
                    {
                        float Key(int e) => s[t * experts + e] + (bias?[e] ?? 0f);
                        int[] chosen = Enumerable
                            .Range(0, experts)
                            .OrderBy(e => float.IsNaN(Key(e)) ? 1 : 0)
                            .ThenByDescending(e => float.IsNaN(Key(e)) ? 0f : Key(e))
                            .ThenBy(e => e)
                            .Take(k)
                            .Order()
                            .ToArray();
                        Assert.Equal(chosen.Select(e => (long)e), gotIds.Skip(t * k).Take(k));
                        float sum = 0f;
                        foreach (int e in chosen)
                            sum += s[t * experts + e];
                        float denominator = norm ? sum + 1e-20f : 1f;
                        Assert.Equal(
                            chosen.Select(e => s[t * experts + e] / denominator * 2.5f),
                            gotTop.Skip(t * k).Take(k)
                        );
                    }
                },
                iter: 60,
                threads: 1
            );
    }
}
