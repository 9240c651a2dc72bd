using System.Diagnostics;
using System.Text.RegularExpressions;
using MoeSharp.Collectives;
using MoeSharp.Verification;

namespace MoeSharp.Cli.Soak;

/// <summary>
/// The soak on in-process ranks: random problems, a fraction of them with one injected fault. A fault-free run must be
/// bitwise equal to the single-rank reference on every rank; a faulted run must end on every rank within the timeout +
/// 2 s with an error that names the culprit rank.
/// </summary>
internal static partial class InProcessSoak
{
    /// <summary>How long a faulted run may take beyond the timeout before it counts as a hang.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);

    /// <summary>Runs one problem; returns null when it behaved, else why not (a hang starts with "hang").</summary>
    /// <param name="problem">The problem.</param>
    /// <param name="plan">The fault to inject, or null.</param>
    /// <param name="devices">Where ranks compute (kept across runs).</param>
    /// <param name="timeout">The collectives' timeout.</param>
    /// <param name="fired">Whether the planned fault was injected (it may find no eligible call).</param>
    public static string? RunOne(
        DispatchCase problem,
        FaultPlan? plan,
        SoakDevices devices,
        TimeSpan timeout,
        out bool fired
    ) => RunOne(problem, plan, devices, timeout, out fired, out _);

    /// <summary>
    /// Runs one problem and also returns each rank's collective calls (for <see cref="FaultPlanner"/>).
    /// </summary>
    /// <param name="problem">The problem.</param>
    /// <param name="plan">The fault to inject, or null.</param>
    /// <param name="devices">Where ranks compute (kept across runs).</param>
    /// <param name="timeout">The collectives' timeout.</param>
    /// <param name="fired">Whether the planned fault was injected.</param>
    /// <param name="calls">Each world rank's collective calls (empty for a rank that never started).</param>
    public static string? RunOne(
        DispatchCase problem,
        FaultPlan? plan,
        SoakDevices devices,
        TimeSpan timeout,
        out bool fired,
        out IReadOnlyList<EligibleCall>[] calls
    )
    {
        var references = SoakRank.References(problem);
        var decorated = new FaultInjectingProcessGroup?[problem.World];
        var clock = Stopwatch.StartNew();
        string?[]? mismatches = null;
        RankFailedException? failure = null;
        // The world runs on its own thread so a hang is observed (and reported) instead of hanging the soak.
        var world = Task.Run(() =>
            InProcessWorld.Run(
                problem.World,
                g =>
                {
                    var faulty = new FaultInjectingProcessGroup(g, plan);
                    decorated[g.Rank] = faulty;
                    return SoakRank.Run(faulty, problem, references, devices);
                },
                timeout
            )
        );
        // A faulted run is held to the timeout + 2 s from the moment its fault fires; the set-up before it (creating
        // device ranks on a GPU takes seconds) is not the fault's to answer for. The wait is bounded either way.
        TimeSpan setUp = TimeSpan.FromSeconds(30);
        bool ended = ((IAsyncResult)world).AsyncWaitHandle.WaitOne(
            plan is null ? timeout + Grace + setUp : TimeSpan.Zero
        );
        while (!ended && plan is not null)
        {
            long firedAt = decorated.Max(d => d?.FiredAt ?? 0);
            TimeSpan since = firedAt == 0 ? clock.Elapsed : Stopwatch.GetElapsedTime(firedAt);
            TimeSpan allowed = firedAt == 0 ? setUp : timeout + Grace;
            if (since > allowed)
                break;
            ended = ((IAsyncResult)world).AsyncWaitHandle.WaitOne(TimeSpan.FromMilliseconds(50));
        }
        ended |= world.IsCompleted;
        clock.Stop();
        long faultTime = decorated.Max(d => d?.FiredAt ?? 0);
        TimeSpan afterFault = faultTime == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(faultTime);
        fired = decorated.Any(d => d?.Fired == true);
        calls = decorated.Select(d => d?.Calls.ToArray() ?? []).ToArray<IReadOnlyList<EligibleCall>>();
        if (!ended)
            devices.Abandon();
        if (!ended)
            return fired
                ? $"hang: still running {afterFault.TotalSeconds:F1} s after the fault ({clock.Elapsed.TotalSeconds:F1} s in all)"
                : $"hang: still running after {clock.Elapsed.TotalSeconds:F1} s";
        if (world.Exception?.InnerException is RankFailedException f)
            failure = f;
        else if (world.Exception is { } other)
            return $"the world failed outside any rank: {other.InnerException?.Message}";
        else
            mismatches = world.Result;

        if (!fired)
        {
            if (failure is not null)
                return $"a fault-free run failed: {failure.Message}";
            return mismatches!.FirstOrDefault(m => m is not null);
        }
        if (failure is null)
            return $"the injected {plan!.Kind} on rank {plan.Rank} went unnoticed";
        if (afterFault > timeout + Grace)
            return $"hang: the faulted run ended {afterFault.TotalSeconds:F1} s after its fault";
        return NamesCulprit(failure, plan!.Rank)
            ? null
            : $"the error does not name culprit rank {plan.Rank}: {failure.Message}";
    }

    /// <summary>
    /// True when the reported failure is the culprit's own error, or a collective error that names it (its failed rank,
    /// "rank R", or R in "ranks [..]").
    /// </summary>
    private static bool NamesCulprit(RankFailedException failure, int culprit)
    {
        if (failure.Rank == culprit)
            return true;
        if (failure.InnerException is CollectiveException { FailedRank: int failed } && failed == culprit)
            return true;
        string message = failure.InnerException?.Message ?? failure.Message;
        return Regex.IsMatch(message, $@"\brank {culprit}\b|\branks \[[^\]]*\b{culprit}\b");
    }
}
