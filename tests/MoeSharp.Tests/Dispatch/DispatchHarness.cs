using System.Collections.Immutable;
using CsCheck;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Dispatch;

/// <summary>
/// One random dispatch problem: a world in SP groups, each group with its own T, and every dispatcher option.
/// </summary>
/// <param name="PassTotal">Whether ranks pass <c>totalTokens</c> (always passed where the dispatcher needs it).</param>
/// <param name="Seed">Seed of the inputs (<see cref="Inputs"/> is reproducible).</param>
internal sealed record DispatchProblem(
    int World,
    int Sp,
    int Dim,
    int Experts,
    int TopK,
    bool ScoreBefore,
    SpShardingPolicy Sharding,
    SequenceLayout Layout,
    int Align,
    bool Int64Ids,
    bool PassTotal,
    int[] Tokens,
    int Seed
)
{
    public int GroupCount => World / Sp;

    public int LocalExperts => Experts / World;

    public TokenDispatcherConfig Config =>
        new(Experts, TopK)
        {
            ScoreBeforeExperts = ScoreBefore,
            Sharding = Sharding,
            Layout = Layout,
            ExpertAlignment = Align,
        };

    /// <summary>Random inputs of every group: x in [-1, 1), scores in [-0.5, 1.5), K distinct ids per token.</summary>
    public GroupInputs[] Inputs()
    {
        var random = new Random(Seed);
        DType idType = Int64Ids ? DType.Int64 : DType.Int32;
        return Tokens
            .Select(t => RandomInputs.Create(random, t, Dim, Experts, TopK, idType, signedScores: true))
            .ToArray();
    }

    public override string ToString() =>
        $"world {World}, sp {Sp}, T [{string.Join(", ", Tokens)}], D {Dim}, E {Experts}, K {TopK}, score {(ScoreBefore ? "before" : "after")}, "
        + $"{Sharding}, {Layout}, align {Align}, {(Int64Ids ? "int64" : "int32")} ids, totalTokens {(PassTotal ? "given" : "omitted")}, seed {Seed}";
}

/// <summary>CsCheck generators of dispatch problems.</summary>
internal static class DispatchGen
{
    /// <summary>T: often tiny (T &lt; SP, T = 0), sometimes a few hundred.</summary>
    public static readonly Gen<int> Tokens = Gen.Frequency(
        (4, Gen.Int[0, 12]),
        (3, Gen.Int[13, 80]),
        (1, Gen.Int[81, 300])
    );

    public static Gen<DispatchProblem> Problems(int maxWorld = 8, Gen<int>? tokens = null) =>
        from world in Gen.Int[1, maxWorld]
        from spPick in Gen.Int[0, 7]
        let divisors = Enumerable.Range(1, world).Where(d => world % d == 0).ToArray()
        let sp = divisors[spPick % divisors.Length]
        from dim in Gen.OneOfConst(1, 3, 8, 33)
        from perRank in Gen.Int[1, 3]
        let experts = world * perRank
        from topK in Gen.Int[1, Math.Min(experts, 6)]
        from scoreBefore in Gen.Bool
        from sharding in Gen.OneOfConst(SpShardingPolicy.PadToMultiple, SpShardingPolicy.Balanced)
        from layout in Gen.OneOfConst(SequenceLayout.Replicated, SequenceLayout.Sharded)
        from align in Gen.OneOfConst(1, 4, 16)
        from int64 in Gen.Bool
        from passTotal in Gen.Bool
        from t in (tokens ?? Tokens).Array[world / sp]
        from seed in Gen.Int[0, int.MaxValue - 1]
        select new DispatchProblem(
            world,
            sp,
            dim,
            experts,
            topK,
            scoreBefore,
            sharding,
            layout,
            align,
            int64,
            passTotal,
            t,
            seed
        );
}

/// <summary>Input builders.</summary>
internal static class DispatchInputs
{
    public static int Id(Tensor ids, int flat) =>
        ids.DType == DType.Int64 ? (int)ids.AsSpan<long>()[flat] : ids.AsSpan<int>()[flat];

    /// <summary>The tag of token t of group g: every element of its row holds it (exact in float32).</summary>
    public static float Tag(int group, int token) => group * 1000 + token + 1;
}

/// <summary>What a rank's body gets.</summary>
internal sealed record RankContext(
    IProcessGroup World,
    ParallelGroups Groups,
    TokenDispatcher Dispatcher,
    GroupInputs Full,
    GroupInputs Mine,
    int? TotalTokens
)
{
    public int Rank => World.Rank;

    public int Group => Groups.DataParallelIndex;

    public DispatchResult Dispatch() => Dispatcher.Dispatch(Mine.X, Mine.Scores, Mine.Ids, TotalTokens);
}

/// <summary>Runs a body on every rank of a problem's world with the dispatcher set up.</summary>
internal static class DispatchHarness
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static T[] Run<T>(
        DispatchProblem p,
        GroupInputs[] inputs,
        Func<RankContext, T> body,
        TimeSpan? timeout = null,
        Func<TokenDispatcherConfig, TokenDispatcherConfig>? configure = null
    ) =>
        InProcessWorld.Run(
            p.World,
            world =>
            {
                using var groups = ParallelGroups.Create(world, p.Sp);
                TokenDispatcherConfig config = configure is null ? p.Config : configure(p.Config);
                // World 1: alternate between the local dispatcher and the all-to-all one over a world of one.
                TokenDispatcher dispatcher =
                    p.World == 1 && p.Seed % 2 == 0
                        ? new LocalTokenDispatcher(config)
                        : new AllToAllTokenDispatcher(config, groups);
                GroupInputs full = inputs[groups.DataParallelIndex];
                bool sharded = p.Layout == SequenceLayout.Sharded;
                GroupInputs mine = sharded ? DispatchWorldRunner.ShardOf(full, p.Sharding, p.Sp, groups.SpRank) : full;
                bool needsTotal = sharded && p.Sharding == SpShardingPolicy.PadToMultiple && p.Sp > 1;
                int? total = p.PassTotal || needsTotal ? full.X.Rows : null;
                return body(new RankContext(world, groups, dispatcher, full, mine, total));
            },
            timeout ?? Timeout
        );

    /// <summary>
    /// Each group's final output from per-rank finals: the first rank's (replicated) or the shards concatenated.
    /// </summary>
    public static Tensor[] Finals(DispatchProblem p, GroupInputs[] inputs, IReadOnlyList<Tensor> rankFinals)
    {
        var finals = new Tensor[p.GroupCount];
        for (int g = 0; g < p.GroupCount; g++)
        {
            if (p.Layout == SequenceLayout.Replicated)
            {
                finals[g] = rankFinals[g * p.Sp];
                continue;
            }
            finals[g] = Concat(
                Enumerable.Range(0, p.Sp).Select(s => rankFinals[g * p.Sp + s]).ToArray(),
                inputs[g].X.RowLength
            );
        }
        return finals;
    }

    /// <summary>The parts' rows one after another, in the parts' dtype (float32 when there are none).</summary>
    public static Tensor Concat(Tensor[] parts, int rowLength)
    {
        int rows = parts.Sum(t => t.Rows);
        var all = Tensor.Uninitialized(parts.Length > 0 ? parts[0].DType : DType.Float32, rows, rowLength);
        int at = 0;
        foreach (Tensor part in parts)
        {
            part.AsBytes().CopyTo(all.AsBytes().Slice(at));
            at += part.AsBytes().Length;
        }
        return all;
    }

    /// <summary>Applies the element-wise expert <paramref name="f"/>(e, v) to expert-major rows.</summary>
    public static Tensor ApplyExperts(
        Tensor routed,
        ImmutableArray<int> tokensPerLocalExpert,
        int firstExpert,
        Func<int, float, float> f
    )
    {
        var output = Tensor.Uninitialized(DType.Float32, routed.ShapeArray());
        ReadOnlySpan<float> src = routed.AsSpan<float>();
        Span<float> dst = output.AsSpan<float>();
        int d = routed.RowLength,
            row = 0;
        for (int j = 0; j < tokensPerLocalExpert.Length; j++)
        {
            int e = firstExpert + j;
            for (int i = row * d; i < (row + tokensPerLocalExpert[j]) * d; i++)
                dst[i] = f(e, src[i]);
            row += tokensPerLocalExpert[j];
        }
        return output;
    }

    public static string? BitwiseMismatch(string name, Tensor expected, Tensor actual) =>
        TensorComparison.FirstBitwiseMismatch(name, expected, actual);
}

/// <summary>
/// Straightforward float32 and float64 definitions of DESIGN.md §1, independent of the dispatcher.
/// </summary>
internal static class NaiveDispatch
{
    /// <summary>The scaled-identity expert of the golden files: v · (1 + e/8) in float32.</summary>
    public static float Scaled(int e, float v) => v * (1f + e / 8f);

    /// <summary>An affine expert that maps zero rows (pad rows) to nonzero ones, so a leaked pad row shows.</summary>
    public static float Affine(int e, float v) => v * (1f + e / 8f) + (e + 1) / 16f;

    /// <summary>Shard of SP rank s: start, real rows, pad rows.</summary>
    public static (int Start, int Real, int Pad) Shard(SpShardingPolicy policy, int tokens, int sp, int s)
    {
        if (policy == SpShardingPolicy.PadToMultiple)
        {
            int size = (tokens + sp - 1) / sp;
            int start = s * size;
            int real = Math.Max(0, Math.Min(size, tokens - start));
            return (Math.Min(start, tokens), real, size - real);
        }
        int starts = 0;
        for (int r = 0; r < s; r++)
            starts += tokens / sp + (r < tokens % sp ? 1 : 0);
        return (starts, tokens / sp + (s < tokens % sp ? 1 : 0), 0);
    }

    /// <summary>
    /// A token's (expert, slot) pairs in combine order: ascending expert id, ties by slot.
    /// </summary>
    public static (int Expert, int Slot)[] SortedEntries(GroupInputs g, int t)
    {
        int k = g.Scores.Dim(1);
        return Enumerable
            .Range(0, k)
            .Select(slot => (DispatchInputs.Id(g.Ids, t * k + slot), slot))
            .OrderBy(p => p.Item1)
            .ThenBy(p => p.slot)
            .ToArray();
    }

    /// <summary>out[t] = (shared[t] or 0) + Σ terms in ascending expert id, every operation in float32.</summary>
    public static Tensor Final32(GroupInputs g, bool scoreBefore, Func<int, float, float> f, Tensor? shared = null)
    {
        int tokens = g.X.Rows,
            d = g.X.RowLength,
            k = g.Scores.Dim(1);
        var output = Tensor.Uninitialized(DType.Float32, tokens, d);
        ReadOnlySpan<float> x = g.X.AsSpan<float>(),
            s = g.Scores.AsSpan<float>();
        Span<float> o = output.AsSpan<float>();
        for (int t = 0; t < tokens; t++)
        {
            var entries = SortedEntries(g, t);
            for (int j = 0; j < d; j++)
            {
                float acc = shared is null ? 0f : shared.AsSpan<float>()[t * d + j];
                foreach (var (e, slot) in entries)
                {
                    float score = s[t * k + slot],
                        v = x[t * d + j];
                    acc += scoreBefore ? f(e, v * score) : f(e, v) * score;
                }
                o[t * d + j] = acc;
            }
        }
        return output;
    }

    /// <summary>The dense definition in float64 for the scaled-identity expert: Σ_k s·(1 + e/8)·x.</summary>
    public static double[] DenseScaled64(GroupInputs g) => SumScaledTerms(g, term => term);

    /// <summary>
    /// Σ_k |s·(1 + e/8)·x| per element: the size of the terms <see cref="DenseScaled64"/> sums, the scale of the
    /// float32 rounding a correct sum may show. Scores may have either sign, so a sum can be far smaller than its
    /// terms.
    /// </summary>
    public static double[] DenseScaled64Magnitude(GroupInputs g) => SumScaledTerms(g, Math.Abs);

    /// <summary>Σ_k f(s·(1 + e/8)·x) per element, in float64.</summary>
    private static double[] SumScaledTerms(GroupInputs g, Func<double, double> f)
    {
        int tokens = g.X.Rows,
            d = g.X.RowLength,
            k = g.Scores.Dim(1);
        var output = new double[tokens * d];
        ReadOnlySpan<float> x = g.X.AsSpan<float>(),
            s = g.Scores.AsSpan<float>();
        for (int t = 0; t < tokens; t++)
        {
            for (int slot = 0; slot < k; slot++)
            {
                int e = DispatchInputs.Id(g.Ids, t * k + slot);
                double c = 1 + e / 8.0;
                for (int j = 0; j < d; j++)
                    output[t * d + j] += f(s[t * k + slot] * c * x[t * d + j]);
            }
        }
        return output;
    }

    /// <summary>‖actual − expected‖ / max(‖scale‖, tiny): the error against the size of the terms summed.</summary>
    public static double ScaledError(
        ReadOnlySpan<double> expected,
        ReadOnlySpan<float> actual,
        ReadOnlySpan<double> scale
    )
    {
        Assert.Equal(expected.Length, actual.Length);
        Assert.Equal(expected.Length, scale.Length);
        double diff = 0,
            norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double delta = actual[i] - expected[i];
            diff += delta * delta;
            norm += scale[i] * scale[i];
        }
        return Math.Sqrt(diff) / Math.Max(Math.Sqrt(norm), 1e-30);
    }
}
