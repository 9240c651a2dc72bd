using System.Collections.Immutable;
using CsCheck;
using MoeSharp.Collectives;
using MoeSharp.Cuda.Kernels;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Testing;
using MoeSharp.Verification;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// The dispatchers, unchanged, with <see cref="IlgpuMoeKernels"/> on ILGPU's CPU accelerator: every golden dispatch
/// file replays bitwise through <see cref="AllToAllTokenDispatcher"/> on in-process ranks (rows exchanged through
/// <see cref="HostStagedProcessGroup"/>), and random EP = 1 problems (<see cref="LocalTokenDispatcher"/>) give the
/// host backend's bits forward and backward.
/// </summary>
[Collection(CpuBackendCollection.Name)]
public class DispatchEndToEndTests(CpuBackendFixture fixture)
{
    /// <summary>The golden files' expert: <c>v · (1 + e/8)</c> in float32.</summary>
    private static float Expert(int e, float v) => v * (1f + e / 8f);

    /// <summary>Golden dispatch files (metadata without <c>kind</c>), found by listing the folder.</summary>
    public static TheoryData<string> DispatchFiles()
    {
        var data = new TheoryData<string>();
        foreach (string path in GoldenFiles.SafetensorsFiles())
        {
            if (!SafetensorsFile.Read(path).Metadata.ContainsKey("kind"))
                data.Add(Path.GetFileName(path));
        }
        return data;
    }

    [Fact]
    public void TheGoldenFolderHasDispatchFiles() => Assert.NotEmpty(DispatchFiles());

    [Theory]
    [MemberData(nameof(DispatchFiles))]
    public void GoldenFile_ReplaysBitwise_ThroughTheAllToAllDispatcher(string fileName)
    {
        SafetensorsContent file = SafetensorsFile.Read(GoldenFiles.PathOf(fileName));
        var meta = file.Metadata;
        int world = int.Parse(meta["world"]),
            sp = int.Parse(meta["sp"]),
            experts = int.Parse(meta["experts"]),
            k = int.Parse(meta["top_k"]);
        var config = new TokenDispatcherConfig(experts, k)
        {
            ScoreBeforeExperts = bool.Parse(meta["score_before_experts"]),
        };
        int localExperts = experts / world;
        // One kernels instance per rank (their scratch is per caller), all on the shared accelerator, created up front.
        var kernels = Enumerable
            .Range(0, world)
            .Select(_ => new IlgpuMoeKernels(fixture.Backend.Accelerator))
            .ToArray();
        try
        {
            string?[] mismatches = InProcessWorld.Run(
                world,
                group =>
                {
                    int rank = group.Rank,
                        g = rank / sp;
                    IlgpuMoeKernels mine = kernels[rank];
                    using var groups = ParallelGroups.Create(new HostStagedProcessGroup(group), sp);
                    var dispatcher = new AllToAllTokenDispatcher(config, groups, mine);
                    Tensor x = mine.Device.ToDevice(file.Get($"x.g{g}"));
                    DispatchResult result = dispatcher.Dispatch(
                        x,
                        mine.Device.ToDevice(file.Get($"scores.g{g}")),
                        mine.Device.ToDevice(file.Get($"ids.g{g}"))
                    );
                    Tensor routed = result.RoutedTokens.ToHost();
                    long[] expectedCounts = file.Get($"counts.r{rank}").AsSpan<long>().ToArray();
                    if (!expectedCounts.SequenceEqual(result.TokensPerLocalExpert.Select(c => (long)c)))
                        return $"rank {rank}: counts differ";
                    if (Mismatch(file.Get($"routed.r{rank}"), routed) is { } m1)
                        return $"rank {rank} routed: {m1}";
                    Tensor expertOut = mine.Device.ToDevice(
                        ApplyExperts(routed, result.TokensPerLocalExpert, rank * localExperts)
                    );
                    Tensor output = dispatcher.Combine(expertOut, result.Metadata, x);
                    if (Mismatch(file.Get($"out.r{rank}"), output.ToHost()) is { } m2)
                        return $"rank {rank} out: {m2}";
                    Tensor final = dispatcher.ReduceSequenceParallel(output);
                    return Mismatch(file.Get($"final.g{g}"), final.ToHost()) is { } m3
                        ? $"rank {rank} final: {m3}"
                        : null;
                },
                TimeSpan.FromSeconds(60)
            );
            Assert.All(mismatches, Assert.Null);
        }
        finally
        {
            foreach (var k1 in kernels)
                k1.Dispose();
        }
    }

    [Fact]
    public void RandomLocalProblems_MatchTheHostBackend_ForwardAndBackward()
    {
        IlgpuMoeKernels device = fixture.Backend.Kernels;
        Gen.Select(
                Gen.Int[0, 40],
                Gen.OneOfConst(1, 3, 8, 16),
                Gen.Int[1, 6],
                Gen.Int[1, 3],
                Gen.Bool,
                Gen.OneOfConst(1, 4, 16),
                Gen.Bool,
                Gen.Int[0, int.MaxValue - 1]
            )
            .Select(Gen.Bool, (t, bf16) => (t, bf16))
            .Sample(
                sample =>
                {
                    var ((tokens, d, experts, kPick, scoreBefore, align, int64, seed), bf16) = sample;
                    int k = Math.Min(kPick, experts);
                    var r = new Random(seed);
                    var config = new TokenDispatcherConfig(experts, k)
                    {
                        ScoreBeforeExperts = scoreBefore,
                        ExpertAlignment = align,
                    };
                    Tensor x = Rows(Floats(r, tokens, d), bf16),
                        scores = Floats(r, tokens, k);
                    Tensor ids = RandomInputs.ExpertIds(r, tokens, experts, k, int64 ? DType.Int64 : DType.Int32);
                    Tensor gradOut = Rows(Floats(r, tokens, d), bf16);
                    Tensor shared = Rows(Floats(r, tokens, d), bf16);
                    var host = Run(new LocalTokenDispatcher(config), x, scores, ids, gradOut, shared, t => t);
                    var dev = Run(
                        new LocalTokenDispatcher(config, device),
                        x,
                        scores,
                        ids,
                        gradOut,
                        shared,
                        device.Device.ToDevice
                    );
                    Assert.Equal(host.Length, dev.Length);
                    for (int i = 0; i < host.Length; i++)
                        Assert.Null(Mismatch(host[i], dev[i]));
                },
                iter: 60,
                threads: 1
            );
    }

    /// <summary>
    /// Dispatch, experts, combine (with a shared-expert start), combine backward, dispatch backward: every result on
    /// the host.
    /// </summary>
    private static Tensor[] Run(
        TokenDispatcher dispatcher,
        Tensor x,
        Tensor scores,
        Tensor ids,
        Tensor gradOut,
        Tensor shared,
        Func<Tensor, Tensor> toDevice
    )
    {
        Tensor dx = toDevice(x);
        DispatchResult result = dispatcher.Dispatch(dx, toDevice(scores), toDevice(ids));
        Tensor routed = result.RoutedTokens.ToHost();
        Tensor expertOut = toDevice(ApplyExperts(routed, result.TokensPerLocalExpert, 0));
        Tensor sharedDevice = toDevice(shared);
        CombineResult combined = dispatcher.CombineWithState(expertOut, result.Metadata, dx, _ => sharedDevice);
        CombineBackwardResult cb = dispatcher.CombineBackward(toDevice(gradOut), combined.State);
        DispatchBackwardResult db = dispatcher.DispatchBackward(cb.GradRoutedOutput, result.Metadata, dx);
        var all = new List<Tensor>
        {
            routed,
            combined.Output.ToHost(),
            cb.GradRoutedOutput.ToHost(),
            db.GradX.ToHost(),
        };
        if (cb.GradTopScores is not null)
            all.Add(cb.GradTopScores.ToHost());
        if (db.GradTopScores is not null)
            all.Add(db.GradTopScores.ToHost());
        return all.ToArray();
    }

    private static Tensor Rows(Tensor floats, bool bf16) => bf16 ? floats.ToBFloat16() : floats;

    /// <summary>The test experts; bfloat16 rows go through them in float32 and are rounded back.</summary>
    private static Tensor ApplyExperts(Tensor routed, ImmutableArray<int> tokensPerLocalExpert, int firstExpert)
    {
        if (routed.DType == DType.BFloat16)
            return ApplyExperts(routed.ToFloat32(), tokensPerLocalExpert, firstExpert).ToBFloat16();
        var output = Tensor.Uninitialized(DType.Float32, routed.ShapeArray());
        ReadOnlySpan<float> src = routed.AsSpan<float>();
        Span<float> dst = output.AsSpan<float>();
        int d = routed.RowLength,
            row = 0;
        for (int j = 0; j < tokensPerLocalExpert.Length; j++)
        {
            for (int i = row * d; i < (row + tokensPerLocalExpert[j]) * d; i++)
                dst[i] = Expert(firstExpert + j, src[i]);
            row += tokensPerLocalExpert[j];
        }
        return output;
    }

    private static Tensor Floats(Random r, params int[] shape)
    {
        var t = Tensor.Uninitialized(DType.Float32, shape);
        foreach (ref float v in t.AsSpan<float>())
            v = (float)(r.NextDouble() * 2 - 1);
        return t;
    }

    private static string? Mismatch(Tensor expected, Tensor actual)
    {
        if (!expected.Shape.SequenceEqual(actual.Shape))
            return $"shape {actual.ShapeString}, expected {expected.ShapeString}";
        if (expected.DType != actual.DType)
            return $"dtype {actual.DType}, expected {expected.DType}";
        ReadOnlySpan<byte> e = expected.AsBytes(),
            a = actual.AsBytes();
        int size = expected.DType.SizeOf();
        for (int i = 0; i < e.Length; i += size)
        {
            if (!e.Slice(i, size).SequenceEqual(a.Slice(i, size)))
                return $"element {i / size} differs";
        }
        return null;
    }

    [Fact]
    public void InvalidEntryOnOneRank_EveryRankThrows_AfterTheDeviceCountExchange()
    {
        // The counts go through the device group: the bad rank's flag reaches the others, so they throw too instead of
        // waiting.
        var kernels = Enumerable.Range(0, 2).Select(_ => new IlgpuMoeKernels(fixture.Backend.Accelerator)).ToArray();
        try
        {
            var error = Assert.Throws<RankFailedException>(() =>
                InProcessWorld.Run(
                    2,
                    group =>
                    {
                        IlgpuMoeKernels mine = kernels[group.Rank];
                        using var groups = ParallelGroups.Create(new HostStagedProcessGroup(group), 1);
                        var dispatcher = new AllToAllTokenDispatcher(new TokenDispatcherConfig(4, 2), groups, mine);
                        long[] ids = [0, 1, 2, 3, 1, 2];
                        if (group.Rank == 1)
                            ids[3] = 9;
                        var x = Tensor.FromArray(new float[3 * 5], 3, 5);
                        var scores = Tensor.FromArray(new float[] { 1, 1, 1, 1, 1, 1 }, 3, 2);
                        dispatcher.Dispatch(
                            mine.Device.ToDevice(x),
                            mine.Device.ToDevice(scores),
                            mine.Device.ToDevice(Tensor.FromArray(ids, 3, 2))
                        );
                    },
                    TimeSpan.FromSeconds(20)
                )
            );
            var bad = Assert.IsAssignableFrom<ArgumentException>(error.RankErrors[1]);
            Assert.Contains("9", bad.Message);
            var peer = Assert.IsType<PeerRankException>(error.RankErrors[0]);
            Assert.Contains("rank 1 passed an invalid routing entry", peer.Message);
            Assert.Equal(1, peer.PeerWorldRank);
            // The world reports the culprit's own error, not the peer's consequence.
            Assert.Equal(1, error.Rank);
            Assert.Same(error.RankErrors[1], error.InnerException);
        }
        finally
        {
            foreach (IlgpuMoeKernels k in kernels)
                k.Dispose();
        }
    }
}
