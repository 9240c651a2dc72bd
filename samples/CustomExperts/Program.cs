// Your own experts behind torchtitan's all-to-all token dispatcher.
//
//   dotnet run --project samples/CustomExperts                   # 4 in-process ranks (threads)
//   mpiexec -n 2 dotnet samples/CustomExperts/bin/Release/net10.0/CustomExperts.dll --mpi   # one rank per process
//
// Every rank routes its shard of the tokens to the experts of every rank, runs its own experts on the rows it receives,
// and combines the results back. The sample then checks each rank's output against one rank doing everything alone:
// bitwise equal, because each token's terms are added in ascending expert id whatever the layout.
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Mpi;
using MoeSharp.Tensors;

const int Experts = 8,
    TopK = 2,
    Dim = 16,
    TokensPerGroup = 101,
    SpSize = 2,
    Seed = 42;
bool mpi = args.Contains("--mpi");

if (mpi)
    return MpiProcessGroup.RunOrAbort(world => RunRank(world));
InProcessWorld.Run(4, world => RunRank(world));
return 0;

void RunRank(IProcessGroup world)
{
    int sp = world.Size % SpSize == 0 ? SpSize : 1;
    int group = world.Rank / sp,
        spRank = world.Rank % sp;
    // Every rank draws its data-parallel group's tokens and routing from the seed; it keeps its SP shard.
    (Tensor xAll, Tensor scoresAll, Tensor idsAll) = GroupTokens(Seed + group);
    SequenceShard shard = SequenceShard.For(SpShardingPolicy.Balanced, TokensPerGroup, sp, spRank);
    Tensor x = Rows(xAll, shard.Start, shard.RealRows);
    Tensor topScores = Rows(scoresAll, shard.Start, shard.RealRows);
    Tensor expertIds = Rows(idsAll, shard.Start, shard.RealRows);

    // README: the dispatcher
    using var groups = ParallelGroups.Create(world, sp); // EP = world, SP groups of consecutive ranks
    var dispatcher = new AllToAllTokenDispatcher(
        new TokenDispatcherConfig(numExperts: Experts, topK: TopK)
        {
            ScoreBeforeExperts = false,
            Sharding = SpShardingPolicy.Balanced, // or PadToMultiple (torchtitan's seed)
            Layout = SequenceLayout.Sharded, // or Replicated
            ExpertAlignment = 4, // pad each local expert's rows (fp8 grouped GEMMs want 16)
        },
        groups
    );
    int firstExpert = dispatcher.EpRank * dispatcher.NumLocalExperts;
    using DispatchResult d = dispatcher.Dispatch(x, topScores, expertIds, totalTokens: TokensPerGroup);
    Tensor y = RunExperts(d.RoutedTokens, d.TokensPerLocalExpert.AsSpan(), firstExpert); // [R, D], expert-major
    using Tensor output = dispatcher.Combine(y, d.Metadata, x, SharedExpert); // shared expert overlaps the exchange
    // Leaving the scope hands the routed rows and the output back to dispatcher.Allocator: the next step reuses warm
    // memory.
    // README: end

    // One rank alone, every expert local: the same rows, bit for bit.
    var alone = new LocalTokenDispatcher(new TokenDispatcherConfig(Experts, TopK));
    DispatchResult all = alone.Dispatch(xAll, scoresAll, idsAll);
    Tensor reference = alone.Combine(
        RunExperts(all.RoutedTokens, all.TokensPerLocalExpert.AsSpan(), 0),
        all.Metadata,
        xAll,
        SharedExpert
    );
    bool same = Rows(reference, shard.Start, shard.RealRows).BitwiseEquals(output);
    Console.WriteLine(
        $"rank {world.Rank} of {world.Size} (SP rank {spRank}, tokens {shard.Start}..{shard.Start + shard.RealRows - 1}"
            + $" of group {group}): experts {firstExpert}..{firstExpert + dispatcher.NumLocalExperts - 1} got "
            + $"{d.RoutedTokens.Rows} rows; {(same ? "bitwise equal to one rank alone" : "DIFFERS from one rank alone")}"
    );
    if (!same)
        throw new InvalidOperationException($"rank {world.Rank}: the output differs from one rank alone");
}

// Custom experts: expert e maps a row v to tanh(v) * (1 + e) + e / 10. Any row-wise function works; rows of expert e
// are the e-th block of tokensPerLocalExpert rows (alignment pad rows included: they are zero and their output is
// dropped).
static Tensor RunExperts(Tensor routed, ReadOnlySpan<int> tokensPerLocalExpert, int firstExpert)
{
    var y = Tensor.Uninitialized(DType.Float32, routed.ShapeArray());
    int row = 0;
    for (int local = 0; local < tokensPerLocalExpert.Length; local++)
    {
        int e = firstExpert + local;
        for (int end = row + tokensPerLocalExpert[local]; row < end; row++)
        {
            ReadOnlySpan<float> v = routed.Row<float>(row);
            Span<float> o = y.Row<float>(row);
            for (int j = 0; j < v.Length; j++)
                o[j] = MathF.Tanh(v[j]) * (1 + e) + e / 10f;
        }
    }
    return y;
}

// A shared expert sees every token of this rank: here, half of the token.
static Tensor SharedExpert(Tensor ownTokens)
{
    var y = Tensor.Uninitialized(DType.Float32, ownTokens.ShapeArray());
    ReadOnlySpan<float> x = ownTokens.AsSpan<float>();
    Span<float> o = y.AsSpan<float>();
    for (int i = 0; i < x.Length; i++)
        o[i] = 0.5f * x[i];
    return y;
}

// A data-parallel group's tokens [T, D], scores [T, K] and distinct expert ids [T, K], from a seed.
static (Tensor X, Tensor Scores, Tensor Ids) GroupTokens(int seed)
{
    var random = new Random(seed);
    var x = new float[TokensPerGroup * Dim];
    for (int i = 0; i < x.Length; i++)
        x[i] = (float)(random.NextDouble() * 2 - 1);
    var scores = new float[TokensPerGroup * TopK];
    var ids = new long[TokensPerGroup * TopK];
    for (int t = 0; t < TokensPerGroup; t++)
    {
        int[] chosen = Enumerable.Range(0, Experts).OrderBy(_ => random.Next()).Take(TopK).ToArray();
        for (int k = 0; k < TopK; k++)
        {
            ids[t * TopK + k] = chosen[k];
            scores[t * TopK + k] = (float)random.NextDouble();
        }
    }
    return (
        Tensor.FromArray(x, TokensPerGroup, Dim),
        Tensor.FromArray(scores, TokensPerGroup, TopK),
        Tensor.FromArray(ids, TokensPerGroup, TopK)
    );
}

static Tensor Rows(Tensor t, int start, int count)
{
    var rows = Tensor.Uninitialized(t.DType, [count, .. t.ShapeArray()[1..]]);
    t.AsBytes().Slice((int)(start * t.ByteCount / Math.Max(1, t.Rows)), (int)rows.ByteCount).CopyTo(rows.AsBytes());
    return rows;
}
