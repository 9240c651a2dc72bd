using CsCheck;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Quantization;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Dispatch;

/// <summary>
/// FP8 on the wire (<see cref="RowWireFormat.Fp8E4M3"/>): the same invariants as the other row types (bitwise across
/// EP, SP, sharding, layout, alignment, checked against one definition that quantises each routed row alone), the
/// bytes the exchange moves, and the configuration errors.
/// </summary>
public class Fp8DispatchTests
{
    private const int Iterations = 40;

    private static TokenDispatcherConfig Fp8(TokenDispatcherConfig config) =>
        config with
        {
            WireFormat = RowWireFormat.Fp8E4M3,
        };

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.BFloat16)]
    public void FinalOutput_IsBitwiseTheDefinition_OnEveryWorldAndLayout(DType rowType)
    {
        // D up to 260: rows of one, two and three scale blocks, the last partial, and code words with pad bytes.
        Gen<DispatchProblem> problems =
            from p in DispatchGen.Problems()
            from dim in Gen.OneOfConst(1, 3, 33, 130, 260)
            select p with
            {
                Dim = dim,
            };
        problems.Sample(
            p =>
            {
                GroupInputs[] inputs = p.Inputs().Select(g => Spread(g, p.Seed).WithRowType(rowType)).ToArray();
                var ranks = DispatchHarness.Run(
                    p,
                    inputs,
                    c =>
                    {
                        DispatchResult d = c.Dispatch();
                        Assert.Equal(rowType, d.RoutedTokens.DType);
                        Tensor y = AffineExperts(d.RoutedTokens, d, c.Rank * p.LocalExperts);
                        Tensor output = c.Dispatcher.Combine(y, d.Metadata, c.Mine.X);
                        return c.Dispatcher.ReduceSequenceParallel(output);
                    },
                    configure: Fp8
                );
                Tensor[] finals = DispatchHarness.Finals(p, inputs, ranks);
                for (int g = 0; g < p.GroupCount; g++)
                {
                    Tensor expected = Definition(inputs[g], p.ScoreBefore);
                    string? mismatch = DispatchHarness.BitwiseMismatch($"{p}: final.g{g}", expected, finals[g]);
                    Assert.True(mismatch is null, mismatch);
                }
            },
            iter: Iterations,
            threads: 1
        );
    }

    [Fact]
    public void Backward_MovesGradientsInTheirDtype_SoItEqualsTheNativeBackward()
    {
        // FP8 rounds only dispatch's forward rows: combine's backward (dispatch's exchange) and dispatch's backward
        // move gradients unquantised, and neither depends on the forward rows' values.
        DispatchGen
            .Problems()
            .Sample(
                p =>
                {
                    GroupInputs[] inputs = p.Inputs();
                    var random = new Random(p.Seed + 1);
                    Tensor[] gradOut = inputs
                        .Select(g => RandomInputs.Create(random, g.X.Rows, p.Dim, p.Experts, p.TopK, DType.Int32).X)
                        .ToArray();
                    Tensor[][] Run(Func<TokenDispatcherConfig, TokenDispatcherConfig>? configure) =>
                        DispatchHarness.Run(
                            p,
                            inputs,
                            c =>
                            {
                                DispatchResult d = c.Dispatch();
                                CombineResult combined = c.Dispatcher.CombineWithState(
                                    AffineExperts(d.RoutedTokens, d, c.Rank * p.LocalExperts),
                                    d.Metadata,
                                    c.Mine.X
                                );
                                Tensor myGrad =
                                    p.Layout == SequenceLayout.Sharded
                                        ? DispatchWorldRunner
                                            .ShardOf(
                                                new GroupInputs(gradOut[c.Group], c.Full.Scores, c.Full.Ids),
                                                p.Sharding,
                                                p.Sp,
                                                c.Groups.SpRank
                                            )
                                            .X
                                        : gradOut[c.Group];
                                CombineBackwardResult cb = c.Dispatcher.CombineBackward(myGrad, combined.State);
                                DispatchBackwardResult db = c.Dispatcher.DispatchBackward(
                                    cb.GradRoutedOutput,
                                    d.Metadata,
                                    c.Mine.X
                                );
                                return new[] { cb.GradRoutedOutput, c.Dispatcher.ReduceSequenceParallel(db.GradX) };
                            },
                            configure: configure
                        );
                    Tensor[][] native = Run(null),
                        fp8 = Run(Fp8);
                    for (int r = 0; r < p.World; r++)
                    {
                        for (int i = 0; i < 2; i++)
                        {
                            string? mismatch = DispatchHarness.BitwiseMismatch(
                                $"{p}: rank {r} {(i == 0 ? "grad routed" : "grad x")}",
                                native[r][i],
                                fp8[r][i]
                            );
                            Assert.True(mismatch is null, mismatch);
                        }
                    }
                },
                iter: 25,
                threads: 1
            );
    }

    [Fact]
    public void Fp8Rounding_ChangesTheOutput_SoTheTestAboveSeesIt()
    {
        // Guards the definition test: were the wire format ignored, native rows would differ from it.
        var p = new DispatchProblem(
            2,
            1,
            64,
            4,
            2,
            false,
            SpShardingPolicy.PadToMultiple,
            SequenceLayout.Replicated,
            1,
            false,
            true,
            [40, 40],
            7
        );
        GroupInputs[] inputs = p.Inputs();
        Tensor[] Run(Func<TokenDispatcherConfig, TokenDispatcherConfig>? configure) =>
            DispatchHarness.Run(
                p,
                inputs,
                c =>
                {
                    DispatchResult d = c.Dispatch();
                    return c.Dispatcher.Combine(
                        AffineExperts(d.RoutedTokens, d, c.Rank * p.LocalExperts),
                        d.Metadata,
                        c.Mine.X
                    );
                },
                configure: configure
            );
        Tensor[] native = Run(null),
            fp8 = Run(Fp8);
        Assert.NotNull(DispatchHarness.BitwiseMismatch("native vs fp8", native[0], fp8[0]));
        Assert.Null(DispatchHarness.BitwiseMismatch("fp8", Definition(inputs[0], false), fp8[0]));
    }

    [Theory]
    [InlineData(7168, 2)]
    [InlineData(7168, 4)]
    [InlineData(2048, 2)]
    public void ForwardExchange_MovesTheWireBytes_AtMostHalfOfBFloat16(int dim, int world)
    {
        const int tokens = 24,
            experts = 8,
            topK = 2;
        var random = new Random(dim + world);
        GroupInputs[] inputs = Enumerable
            .Range(0, world)
            .Select(_ =>
                RandomInputs.Create(random, tokens, dim, experts, topK, DType.Int32).WithRowType(DType.BFloat16)
            )
            .ToArray();
        (long Bytes, long Rows, long TrafficBytes)[] Measure(RowWireFormat format) =>
            InProcessWorld.Run(
                world,
                w =>
                {
                    using var groups = ParallelGroups.Create(w, 1);
                    var config = new TokenDispatcherConfig(experts, topK)
                    {
                        WireFormat = format,
                        CollectTraffic = true,
                    };
                    var dispatcher = new AllToAllTokenDispatcher(config, groups);
                    GroupInputs mine = inputs[w.Rank];
                    using DispatchResult d = dispatcher.Dispatch(mine.X, mine.Scores, mine.Ids);
                    long rows = (long)mine.X.Rows * topK;
                    return (dispatcher.LastDispatchBytesSent, rows, d.Traffic!.TotalBytes);
                },
                DispatchHarness.Timeout
            );
        var bf16 = Measure(RowWireFormat.Native);
        var fp8 = Measure(RowWireFormat.Fp8E4M3);
        for (int r = 0; r < world; r++)
        {
            Assert.Equal(bf16[r].Rows * dim * 2, bf16[r].Bytes);
            Assert.Equal(fp8[r].Rows * Fp8WireRows.BytesPerRow(dim), fp8[r].Bytes);
        }
        long totalBf16 = bf16.Sum(b => b.Bytes),
            totalFp8 = fp8.Sum(b => b.Bytes);
        Assert.Equal(fp8.Sum(b => b.Bytes), fp8[0].TrafficBytes);
        Assert.Equal(bf16.Sum(b => b.Bytes), bf16[0].TrafficBytes);
        double ratio = (double)totalFp8 / totalBf16;
        Assert.True(ratio <= 0.53, $"FP8 moved {totalFp8} bytes, bfloat16 {totalBf16}: {ratio}");
        if (dim == 7168)
            Assert.Equal(7392.0 / 14336.0, ratio);
    }

    [Fact]
    public void MemoryEstimate_CountsTheWireRowsEachWay()
    {
        var native = new TokenDispatcherConfig(64, 8);
        long plain = DispatchMemoryEstimate.BytesPerRank(native, 4, 2, 1000, 7168, DType.BFloat16);
        long fp8 = DispatchMemoryEstimate.BytesPerRank(
            native with
            {
                WireFormat = RowWireFormat.Fp8E4M3,
            },
            4,
            2,
            1000,
            7168,
            DType.BFloat16
        );
        // 500 shard tokens × K 8 entries, sent and received, 7392 bytes each.
        Assert.Equal(plain + 2L * 500 * 8 * 7392, fp8);
    }

    [Fact]
    public void ProfiledKernels_TimeTheFp8Kernels_AndGiveTheSameRows()
    {
        GroupInputs g = RandomInputs.Create(new Random(4), 50, 300, 8, 2, DType.Int32);
        var config = new TokenDispatcherConfig(8, 2) { WireFormat = RowWireFormat.Fp8E4M3 };
        var profiled = new MoeSharp.Compute.ProfilingMoeKernels(new MoeSharp.Compute.HostMoeKernels());
        using DispatchResult plain = new LocalTokenDispatcher(config).Dispatch(g.X, g.Scores, g.Ids);
        using DispatchResult timed = new LocalTokenDispatcher(config, profiled).Dispatch(g.X, g.Scores, g.Ids);
        Assert.True(plain.RoutedTokens.BitwiseEquals(timed.RoutedTokens));
        Assert.Equal(1, profiled.Totals["QuantizeRows"].Calls);
        Assert.Equal(1, profiled.Totals["DequantizeRows"].Calls);
    }

    [Fact]
    public void UnknownWireFormat_IsRejectedAtConstruction()
    {
        var config = new TokenDispatcherConfig(4, 2) { WireFormat = (RowWireFormat)7 };
        var error = Assert.Throws<ArgumentException>(() => new LocalTokenDispatcher(config));
        Assert.Contains("WireFormat", error.Message);
    }

    /// <summary>
    /// Rows whose magnitudes span many binades (x · 2^(j mod 24 − 12)), so the per-block scales differ and small
    /// elements reach E4M3's subnormal codes; a few exact zeros.
    /// </summary>
    private static GroupInputs Spread(GroupInputs g, int seed)
    {
        var x = g.X.ToFloat32();
        Span<float> v = x.AsSpan<float>();
        int d = x.RowLength;
        for (int i = 0; i < v.Length; i++)
        {
            int j = i % d;
            v[i] = (i + seed) % 29 == 0 ? 0f : v[i] * MathF.ScaleB(1f, (j / 7 + i / d) % 24 - 12);
        }
        return g with { X = x };
    }

    /// <summary>The affine expert on the routed rows' dtype: computed on the widened value, rounded once.</summary>
    private static Tensor AffineExperts(Tensor routed, DispatchResult d, int firstExpert)
    {
        Tensor y = DispatchHarness.ApplyExperts(
            routed.ToFloat32(),
            d.TokensPerLocalExpert,
            firstExpert,
            NaiveDispatch.Affine
        );
        return routed.DType == DType.BFloat16 ? y.ToBFloat16() : y;
    }

    /// <summary>
    /// The definition: each routed row (score before: <c>x·s</c> rounded to the row dtype) quantised alone with
    /// <see cref="Fp8RowQuantizer"/> and dequantised to the row dtype; the affine expert rounded to the row dtype;
    /// terms (score after: times <c>s</c>) added from +0 in float32 in ascending expert id, rounded once.
    /// </summary>
    private static Tensor Definition(GroupInputs g, bool scoreBefore)
    {
        DType rowType = g.X.DType;
        Tensor x = g.X.ToFloat32();
        int tokens = x.Rows,
            d = x.RowLength,
            k = g.Scores.RowLength;
        ReadOnlySpan<float> scores = g.Scores.AsSpan<float>();
        var result = Tensor.Uninitialized(DType.Float32, tokens, d);
        Span<float> output = result.AsSpan<float>();
        float Round(float v) => rowType == DType.BFloat16 ? BFloat16.FromSingle(v).ToSingle() : v;
        for (int t = 0; t < tokens; t++)
        {
            var acc = new float[d];
            foreach (var (e, slot) in NaiveDispatch.SortedEntries(g, t))
            {
                float s = scores[t * k + slot];
                var row = new float[d];
                for (int j = 0; j < d; j++)
                {
                    float v = x.AsSpan<float>()[t * d + j];
                    row[j] = scoreBefore ? Round(v * s) : v;
                }
                Tensor input = Tensor.FromArray(row, 1, d);
                if (rowType == DType.BFloat16)
                    input = input.ToBFloat16();
                float[] q = Fp8RowQuantizer
                    .Dequantize(Fp8RowQuantizer.Quantize(input), rowType)
                    .ToFloat32()
                    .AsSpan<float>()
                    .ToArray();
                for (int j = 0; j < d; j++)
                {
                    float y = Round(NaiveDispatch.Affine(e, q[j]));
                    acc[j] += scoreBefore ? y : y * s;
                }
            }
            acc.CopyTo(output.Slice(t * d, d));
        }
        return rowType == DType.BFloat16 ? result.ToBFloat16() : result;
    }
}
