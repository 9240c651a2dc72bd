using System.Diagnostics;
using MoeSharp.Collectives;
using MoeSharp.Cuda;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>What rank 0 reports after a verified run: every rank's statistics and the verdict.</summary>
/// <param name="Ranks">Per world rank: shard tokens, pad rows, rows sent, rows received, rows per local expert.</param>
/// <param name="Mismatches">Ranks whose result differed from the single-rank reference.</param>
/// <param name="FirstMismatch">Rank 0's own mismatch, if any (other ranks print theirs).</param>
/// <param name="Elapsed">Dispatch → experts → combine → reduce on rank 0.</param>
public sealed record RunSummary(
    IReadOnlyList<RankStatistics> Ranks,
    long Mismatches,
    string? FirstMismatch,
    TimeSpan Elapsed
)
{
    /// <summary>Where rank 0 computed, e.g. <c>host</c> or <c>cuda NVIDIA H100 (nccl)</c>.</summary>
    public string Device { get; init; } = "host";

    /// <summary>The run's traffic (dispatch and combine), the same on every rank; null unless the case's dispatcher
    /// config collects it (<see cref="TokenDispatcherConfig.CollectTraffic"/>).</summary>
    public MoeSharp.Telemetry.TrafficReport? Traffic { get; init; }

    /// <summary>1 when the capacity-mode dispatch ran its overflow round (the same on every rank), else 0.</summary>
    public int OverflowRounds { get; init; }
}

/// <summary>One rank's row of the <c>moe run</c> table.</summary>
public sealed record RankStatistics(
    int Rank,
    int ShardTokens,
    int PadRows,
    int RowsSent,
    int RowsReceived,
    int[] RowsPerLocalExpert
);

/// <summary>
/// One rank's part of <c>moe run</c> on any process group: run the problem, compare this rank's share of the
/// result bitwise with the single-rank reference, and gather the statistics and the verdict.
/// </summary>
public static class RunVerification
{
    /// <summary>Runs and verifies <paramref name="problem"/> on this rank of <paramref name="world"/>.</summary>
    public static RunSummary RunRank(IProcessGroup world, DispatchCase problem, ComputeOptions compute)
    {
        using DeviceRank? device = compute.CreateRank(world);
        world.Barrier();
        var clock = Stopwatch.StartNew();
        RankOutcome outcome = DispatchWorldRunner.RunRank(world, problem, device);
        clock.Stop();

        string? mismatch = CompareWithReference(problem, outcome);
        if (mismatch is not null)
            Console.Error.WriteLine($"rank {world.Rank}: {mismatch}");
        Span<long> mismatches = [mismatch is null ? 0 : 1];
        world.AllReduceSum(mismatches);

        int e = outcome.RowsPerLocalExpert.Length,
            width = 5 + e;
        var mine = new int[width];
        mine[0] = outcome.Shard.RealRows;
        mine[1] = outcome.Shard.PadRows;
        mine[2] = outcome.Metadata.RowsSent;
        mine[3] = outcome.Metadata.RowsReceived;
        mine[4] = e;
        outcome.RowsPerLocalExpert.CopyTo(mine, 5);
        var all = new int[width * world.Size];
        world.AllGather<int>(mine, all);
        var ranks = new RankStatistics[world.Size];
        for (int r = 0; r < world.Size; r++)
        {
            ReadOnlySpan<int> row = all.AsSpan(r * width, width);
            ranks[r] = new RankStatistics(r, row[0], row[1], row[2], row[3], row.Slice(5, row[4]).ToArray());
        }
        return new RunSummary(ranks, mismatches[0], mismatch, clock.Elapsed)
        {
            Device = compute.Describe(device),
            Traffic = outcome.Metadata.Traffic,
            OverflowRounds = outcome.Metadata.OverflowRounds,
        };
    }

    /// <summary>
    /// This rank's share of its group's result against the single-rank reference: the whole SP-reduced output
    /// (replicated layout, checked by SP rank 0) or this rank's shard rows (sharded layout).
    /// </summary>
    private static string? CompareWithReference(DispatchCase problem, RankOutcome outcome)
    {
        int group = outcome.Rank / problem.Sp,
            spRank = outcome.Rank % problem.Sp;
        bool sharded = problem.Config.Layout == SequenceLayout.Sharded;
        if (!sharded && spRank != 0)
            return null;
        Tensor reference = DispatchWorldRunner.RunReference(problem.Config, problem.Groups[group]);
        if (sharded)
        {
            SequenceShard shard = SequenceShard.For(problem.Config.Sharding, reference.Rows, problem.Sp, spRank);
            reference = RowSlice(reference, shard.Start, shard.RealRows);
        }
        return TensorComparison.FirstBitwiseMismatch($"final.g{group} (rank {outcome.Rank})", reference, outcome.Final);
    }

    private static Tensor RowSlice(Tensor t, int start, int rows)
    {
        int rowBytes = t.RowLength * t.DType.SizeOf();
        var slice = Tensor.Uninitialized(t.DType, rows, t.RowLength);
        t.AsBytes().Slice(start * rowBytes, rows * rowBytes).CopyTo(slice.AsBytes());
        return slice;
    }
}
