using MoeSharp.Collectives;
using MoeSharp.Cuda;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>
/// Runs a dispatch problem in the normal mode and in capacity mode (<see cref="DispatchCapacity"/>) on the same rank
/// and compares them bitwise: the routed rows (capacity mode's first R rows, and zeros after them), the rows per local
/// expert, the combine output and the SP-reduced final output. Each rank checks its own tensors, so the same code runs
/// on in-process ranks, MPI processes and devices.
/// </summary>
public static class CapacityComparison
{
    /// <summary>Compares the two modes on in-process ranks; one outcome per rank.</summary>
    /// <param name="problem">The problem (its config's own <see cref="TokenDispatcherConfig.Capacity"/> is
    /// ignored).</param>
    /// <param name="capacity">The capacity mode to compare with the normal mode.</param>
    /// <param name="timeout">The in-process world's timeout.</param>
    /// <param name="compute">Where the ranks compute (host kernels by default).</param>
    public static CapacityOutcome[] CompareInProcess(
        DispatchCase problem,
        DispatchCapacity capacity,
        TimeSpan? timeout = null,
        ComputeOptions? compute = null
    )
    {
        ArgumentNullException.ThrowIfNull(problem);
        return InProcessWorld.Run(
            problem.World,
            world =>
            {
                using DeviceRank? device = (compute ?? ComputeOptions.Host).CreateRank(world);
                return CompareRank(world, problem, capacity, device);
            },
            timeout
        );
    }

    /// <summary>This rank's comparison of the two modes (collective over <paramref name="world"/>).</summary>
    /// <param name="world">A process group of the problem's world size.</param>
    /// <param name="problem">The problem.</param>
    /// <param name="capacity">The capacity mode to compare with the normal mode.</param>
    /// <param name="device">This rank's device compute, or null for host kernels.</param>
    public static CapacityOutcome CompareRank(
        IProcessGroup world,
        DispatchCase problem,
        DispatchCapacity capacity,
        DeviceRank? device = null
    )
    {
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(problem);
        ArgumentNullException.ThrowIfNull(capacity);
        RankOutcome normal = DispatchWorldRunner.RunRank(
            world,
            problem with
            {
                Config = problem.Config with { Capacity = null },
            },
            device
        );
        CapacityRun run = RunCapacityRank(
            world,
            problem with
            {
                Config = problem.Config with { Capacity = capacity },
            },
            device
        );
        int r = world.Rank;
        int[] expectedCounts = normal.Metadata.TokensPerLocalExpert.ToArray();
        int routedRows = expectedCounts.Sum();
        string? mismatch =
            (
                expectedCounts.SequenceEqual(run.TokensPerLocalExpert)
                    ? null
                    : $"rank {r}: rows per local expert [{string.Join(", ", run.TokensPerLocalExpert)}] in capacity mode, "
                        + $"[{string.Join(", ", expectedCounts)}] in the normal mode"
            )
            ?? TensorComparison.FirstBitwiseMismatch($"routed.r{r}", normal.Routed, Rows(run.Routed, 0, routedRows))
            ?? ZeroRows($"routed.r{r} after row {routedRows}", run.Routed, routedRows)
            ?? TensorComparison.FirstBitwiseMismatch($"out.r{r}", normal.Output, run.Output)
            ?? TensorComparison.FirstBitwiseMismatch($"final.r{r}", normal.Final, run.Final);
        return new CapacityOutcome(r, mismatch, run.OverflowRounds, run.Routed.Rows, routedRows);
    }

    /// <summary>
    /// One capacity-mode step: dispatch, the scaled-identity experts on the host (the rows per expert are read from the
    /// device here, by the test experts, not by the dispatcher), combine and the SP reduce.
    /// </summary>
    private static CapacityRun RunCapacityRank(IProcessGroup world, DispatchCase problem, DeviceRank? device)
    {
        using var groups = ParallelGroups.Create(device?.World ?? world, problem.Sp);
        var dispatcher = new AllToAllTokenDispatcher(problem.Config, groups, device?.Backend.Kernels);
        GroupInputs inputs = problem.Groups[groups.DataParallelIndex];
        GroupInputs mine =
            problem.Config.Layout == SequenceLayout.Sharded
                ? DispatchWorldRunner.ShardOf(inputs, problem.Config.Sharding, problem.Sp, groups.SpRank)
                : inputs;
        Tensor Upload(Tensor t) => device?.Upload(t) ?? t;

        Tensor x = Upload(mine.X);
        using DispatchResult dispatched = dispatcher.Dispatch(x, Upload(mine.Scores), Upload(mine.Ids), inputs.X.Rows);
        Tensor routed = dispatched.RoutedTokens.ToHost();
        int[] perExpert = dispatched.DeviceTokensPerLocalExpert!.ToHost().AsSpan<int>().ToArray();
        Tensor expertOutput = ScaledIdentityExperts.ApplyToPrefix(
            routed,
            perExpert,
            world.Rank * dispatcher.NumLocalExperts
        );
        Tensor output = dispatcher.Combine(Upload(expertOutput), dispatched.Metadata, x);
        Tensor final = dispatcher.ReduceSequenceParallel(output);
        return new CapacityRun(routed, perExpert, output.ToHost(), final.ToHost(), dispatched.OverflowRounds);
    }

    /// <summary>Rows <c>[start, start + count)</c> of a host tensor, as a new tensor.</summary>
    private static Tensor Rows(Tensor t, int start, int count)
    {
        var slice = Tensor.Uninitialized(t.DType, count, t.RowLength);
        int rowBytes = t.RowLength * t.DType.SizeOf();
        t.AsBytes().Slice(start * rowBytes, count * rowBytes).CopyTo(slice.AsBytes());
        return slice;
    }

    private static string? ZeroRows(string name, Tensor t, int start)
    {
        int rowBytes = t.RowLength * t.DType.SizeOf();
        ReadOnlySpan<byte> rest = t.AsBytes().Slice(start * rowBytes);
        int at = rest.IndexOfAnyExcept((byte)0);
        return at < 0 ? null : $"{name}: byte {at} of the unused rows is {rest[at]}, not 0";
    }

    private sealed record CapacityRun(
        Tensor Routed,
        int[] TokensPerLocalExpert,
        Tensor Output,
        Tensor Final,
        int OverflowRounds
    );
}

/// <summary>One rank's comparison of capacity mode with the normal mode.</summary>
/// <param name="Rank">The rank.</param>
/// <param name="Mismatch">The first difference, or null when the two modes agree bitwise.</param>
/// <param name="OverflowRounds">1 when the capacity-mode dispatch ran the overflow round, else 0.</param>
/// <param name="CapacityRoutedRows">Rows of the capacity-mode routed tensor (the fixed buffer).</param>
/// <param name="RoutedRows">Rows of the normal mode's routed tensor (R).</param>
public sealed record CapacityOutcome(
    int Rank,
    string? Mismatch,
    int OverflowRounds,
    int CapacityRoutedRows,
    int RoutedRows
);
