using MoeSharp.Collectives;
using MoeSharp.Cuda;
using MoeSharp.Dispatch;
using MoeSharp.Experts;
using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>
/// Runs dispatch → test experts (<see cref="ScaledIdentityExperts"/>) → combine → SP reduce on every rank of
/// a world, and the single-rank reference of the same problem.
/// </summary>
public static class DispatchWorldRunner
{
    /// <summary>Runs <paramref name="problem"/> on in-process ranks.</summary>
    public static RankOutcome[] RunInProcess(DispatchCase problem, TimeSpan? timeout = null) =>
        InProcessWorld.Run(problem.World, world => RunRank(world, problem), timeout);

    /// <summary>
    /// One rank's part of <paramref name="problem"/>, on any process group of the right size, with host kernels or on
    /// <paramref name="device"/> (made once per rank by <see cref="ComputeOptions.CreateRank"/> and reused). The
    /// outcome's tensors are host copies.
    /// </summary>
    public static RankOutcome RunRank(IProcessGroup world, DispatchCase problem, DeviceRank? device = null)
    {
        if (world.Size != problem.World)
        {
            throw new ArgumentException(
                $"the problem needs a world of {problem.World} ranks but the process group has {world.Size}",
                nameof(world)
            );
        }
        using var groups = ParallelGroups.Create(device?.World ?? world, problem.Sp);
        var dispatcher = new AllToAllTokenDispatcher(problem.Config, groups, device?.Backend.Kernels);
        GroupInputs inputs = problem.Groups[groups.DataParallelIndex];
        GroupInputs mine =
            problem.Config.Layout == SequenceLayout.Sharded
                ? ShardOf(inputs, problem.Config.Sharding, problem.Sp, groups.SpRank)
                : inputs;
        Tensor Upload(Tensor t) => device?.Upload(t) ?? t;

        Tensor x = Upload(mine.X);
        DispatchResult dispatched = dispatcher.Dispatch(x, Upload(mine.Scores), Upload(mine.Ids), inputs.X.Rows);
        // The test experts are a host function: on a device the routed rows make a round trip through the host,
        // outside the dispatcher, so the dispatcher's own path stays the device's.
        Tensor routed = dispatched.RoutedTokens.ToHost();
        // Capacity mode keeps the rows per expert on the device: the test experts read them, not the dispatcher.
        int[] perExpert =
            dispatched.DeviceTokensPerLocalExpert?.ToHost().AsSpan<int>().ToArray()
            ?? dispatched.TokensPerLocalExpert.ToArray();
        Tensor expertOutput = Upload(
            ScaledIdentityExperts.ApplyToPrefix(routed, perExpert, world.Rank * dispatcher.NumLocalExperts)
        );
        Tensor output = dispatcher.Combine(expertOutput, dispatched.Metadata, x);
        Tensor final = dispatcher.ReduceSequenceParallel(output);
        return new RankOutcome(
            world.Rank,
            dispatched.Metadata.Shard,
            dispatched.Metadata,
            routed,
            output.ToHost(),
            final.ToHost()
        )
        {
            RowsPerLocalExpert = perExpert,
        };
    }

    /// <summary>The single-rank reference: all experts local, no SP, one group's tokens.</summary>
    public static Tensor RunReference(TokenDispatcherConfig config, GroupInputs inputs)
    {
        var reference = config with
        {
            Capacity = null,
            Layout = SequenceLayout.Replicated,
            Sharding = SpShardingPolicy.PadToMultiple,
            ExpertAlignment = 1,
        };
        var dispatcher = new LocalTokenDispatcher(reference);
        DispatchResult dispatched = dispatcher.Dispatch(inputs.X, inputs.Scores, inputs.Ids);
        Tensor expertOutput = ScaledIdentityExperts.Apply(
            dispatched.RoutedTokens,
            dispatched.TokensPerLocalExpert.AsSpan(),
            0
        );
        return dispatcher.Combine(expertOutput, dispatched.Metadata, inputs.X);
    }

    /// <summary>
    /// Each group's final output assembled from the ranks: the SP-reduced output of its first rank
    /// (replicated), or its ranks' shards concatenated in SP order (sharded).
    /// </summary>
    public static Tensor[] GroupFinals(DispatchCase problem, IReadOnlyList<RankOutcome> outcomes)
    {
        var finals = new Tensor[problem.GroupCount];
        for (int g = 0; g < problem.GroupCount; g++)
        {
            int first = g * problem.Sp;
            if (problem.Config.Layout == SequenceLayout.Replicated)
            {
                finals[g] = outcomes[first].Final;
                continue;
            }
            Tensor x = problem.Groups[g].X;
            var final = Tensor.Uninitialized(x.DType, x.ShapeArray());
            int rowBytes = x.RowLength * x.DType.SizeOf(),
                row = 0;
            for (int s = 0; s < problem.Sp; s++)
            {
                Tensor shard = outcomes[first + s].Final;
                shard.AsBytes().CopyTo(final.AsBytes().Slice(row * rowBytes));
                row += shard.Rows;
            }
            finals[g] = final;
        }
        return finals;
    }

    /// <summary>
    /// The rows of SP rank <paramref name="spRank"/> under <paramref name="policy"/>, for the sharded layout.
    /// </summary>
    public static GroupInputs ShardOf(GroupInputs inputs, SpShardingPolicy policy, int sp, int spRank)
    {
        SequenceShard shard = SequenceShard.For(policy, inputs.X.Rows, sp, spRank);
        return new GroupInputs(
            SliceRows(inputs.X, shard.Start, shard.RealRows),
            SliceRows(inputs.Scores, shard.Start, shard.RealRows),
            SliceRows(inputs.Ids, shard.Start, shard.RealRows)
        );
    }

    private static Tensor SliceRows(Tensor t, int start, int rows)
    {
        int[] shape = t.ShapeArray();
        shape[0] = rows;
        var slice = Tensor.Uninitialized(t.DType, shape);
        int rowBytes = (int)(t.ByteCount / Math.Max(1, t.Rows));
        if (t.Rows > 0)
            t.AsBytes().Slice(start * rowBytes, rows * rowBytes).CopyTo(slice.AsBytes());
        return slice;
    }
}
