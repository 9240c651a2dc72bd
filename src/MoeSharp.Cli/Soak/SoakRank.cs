using MoeSharp.Collectives;
using MoeSharp.Cuda;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Cli.Soak;

/// <summary>
/// One rank's part of a soak run: the dispatch round on a (possibly faulty) group, compared bitwise with the reference.
/// </summary>
internal static class SoakRank
{
    /// <summary>The single-rank reference of each group (computed once, before the world runs).</summary>
    public static Tensor[] References(DispatchCase problem) =>
        problem.Groups.Select(g => DispatchWorldRunner.RunReference(problem.Config, g)).ToArray();

    /// <summary>Runs the problem on this rank and returns its first difference from the reference, or null.</summary>
    public static string? Run(IProcessGroup world, DispatchCase problem, Tensor[] references, SoakDevices devices)
    {
        using DeviceRank? device = devices.CreateRank(world);
        RankOutcome outcome = DispatchWorldRunner.RunRank(world, problem, device);
        int group = outcome.Rank / problem.Sp,
            spRank = outcome.Rank % problem.Sp;
        Tensor reference = references[group];
        if (problem.Config.Layout == SequenceLayout.Replicated)
        {
            // Every SP rank holds the group's whole SP-summed output.
            return TensorComparison.FirstBitwiseMismatch(
                $"final.g{group} (rank {outcome.Rank})",
                reference,
                outcome.Final
            );
        }
        SequenceShard shard = SequenceShard.For(problem.Config.Sharding, reference.Rows, problem.Sp, spRank);
        int rowBytes = reference.RowLength * reference.DType.SizeOf();
        var slice = Tensor.Uninitialized(reference.DType, shard.RealRows, reference.RowLength);
        reference.AsBytes().Slice(shard.Start * rowBytes, shard.RealRows * rowBytes).CopyTo(slice.AsBytes());
        return TensorComparison.FirstBitwiseMismatch(
            $"final.g{group} rows of rank {outcome.Rank}",
            slice,
            outcome.Final
        );
    }
}
