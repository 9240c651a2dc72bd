using System.Diagnostics;
using MoeSharp.Cli.Soak;
using MoeSharp.Collectives;
using MoeSharp.Mpi;
using MoeSharp.Verification;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe soak</c>: random configurations of the dispatcher for a while, some with an injected fault; prints each
/// misbehaving run and ends with <c>soak: R runs (F with an injected fault), H hangs, W wrong results</c>. Exit code 0
/// only when H = W = 0, else 1.
/// </summary>
internal sealed class SoakCommand : Command<SoakSettings>
{
    public override int Execute(CommandContext context, SoakSettings settings, CancellationToken cancellationToken)
    {
        using var devices = new SoakDevices(ComputeOptions.Parse(settings.Device, null));
        SoakTally? tally =
            CommKinds.Parse(settings.Comm) == CommKind.InProcess
                ? InProcess(settings, devices)
                : OnMpiJob(settings, devices);
        if (tally is null)
            return ExitCodes.Success; // not rank 0 of an MPI job: rank 0 reports
        Console.WriteLine(tally);
        return tally.Hangs == 0 && tally.Wrong == 0 ? ExitCodes.Success : ExitCodes.Mismatch;
    }

    private static SoakTally InProcess(SoakSettings s, SoakDevices devices)
    {
        var random = new Random(s.Seed);
        var tally = new SoakTally();
        TimeSpan faultTimeout = TimeSpan.FromSeconds(s.TimeoutSeconds),
            quietTimeout = TimeSpan.FromSeconds(30);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < s.Seconds && (s.Runs is null || tally.Runs < s.Runs))
        {
            // A fault needs a peer to notice it: in a world of one rank a collective is a copy with nobody to wait for
            // or disagree with, so faulted runs have at least two ranks.
            bool faulted = s.MaxWorld > 1 && random.NextDouble() < s.FaultRate;
            int? world = faulted ? random.Next(2, s.MaxWorld + 1) : null;
            DispatchCase problem = SoakConfiguration.Draw(random, s.MaxWorld, world);
            // A faulted run's fault is planned at a call its rank really makes: a fault-free probe of the same problem
            // records each rank's calls first (the probe is checked bitwise like any fault-free run).
            FaultPlan? plan = null;
            if (faulted)
            {
                string? probe = InProcessSoak.RunOne(problem, null, devices, quietTimeout, out _, out var calls);
                if (probe is not null)
                {
                    tally.Runs++;
                    Report(tally, problem, null, probe);
                    continue;
                }
                plan = FaultPlanner.Plan(random, calls);
            }
            TimeSpan timeout = plan is null ? quietTimeout : faultTimeout;
            string? problemText = InProcessSoak.RunOne(problem, plan, devices, timeout, out bool fired);
            tally.Runs++;
            if (fired)
                tally.Faulted++;
            else if (plan is not null && problemText is null)
                problemText = "the planned fault found no call to fire at";
            Report(tally, problem, plan, problemText);
        }
        return tally;
    }

    /// <summary>
    /// Runs <paramref name="problem"/> again with one throw on a rank and call drawn alike on every process (same seed,
    /// call counts gathered from the fault-free run), announced on stderr with the seconds since the process started.
    /// The culprit's error reaches the catch in <see cref="OnMpiJob"/>, which ends the job with MPI_Abort; this does
    /// not return normally.
    /// </summary>
    private static void FaultOnce(
        MpiProcessGroup job,
        IProcessGroup group,
        DispatchCase problem,
        FaultInjectingProcessGroup recorded,
        Random random,
        SoakDevices devices
    )
    {
        Span<long> counts = new long[job.Size];
        counts[job.Rank] = recorded.Calls.Count;
        job.AllReduceSum(counts);
        int culprit = random.Next(problem.World);
        int call = (int)random.NextInt64(Math.Max(1, counts[culprit]));
        // Only the culprit's decorator acts on the plan, and only it knows its call indices (splits count too).
        int index = job.Rank == culprit && recorded.Calls.Count > 0 ? recorded.Calls[call].Index : 0;
        var plan = new FaultPlan(culprit, index, FaultKind.Throw);
        if (job.Rank == 0)
        {
            double uptime = (DateTime.Now - Process.GetCurrentProcess().StartTime).TotalSeconds;
            Console.Error.WriteLine(
                string.Create(
                    System.Globalization.CultureInfo.InvariantCulture,
                    $"soak: injecting a throw on rank {culprit} at its collective call {call} of {counts[culprit]} after {uptime:F2} s"
                )
            );
        }
        if (job.Rank >= problem.World)
            return;
        SoakRank.Run(new FaultInjectingProcessGroup(group, plan), problem, SoakRank.References(problem), devices);
        throw new InvalidOperationException(
            $"rank {job.Rank}: the injected fault on rank {culprit} did not end the job"
        );
    }

    /// <summary>
    /// Counts a misbehaving run (<paramref name="problemText"/> not null) as a hang or a wrong result and prints it.
    /// </summary>
    private static void Report(SoakTally tally, DispatchCase problem, FaultPlan? plan, string? problemText)
    {
        if (problemText is null)
            return;
        if (problemText.StartsWith("hang", StringComparison.Ordinal))
            tally.Hangs++;
        else
            tally.Wrong++;
        string fault = plan is null ? "" : $"; fault {plan.Kind} on rank {plan.Rank} at call #{plan.Collective}";
        Console.Error.WriteLine($"soak run {tally.Runs} ({SoakConfiguration.Describe(problem)}{fault}): {problemText}");
    }

    /// <summary>
    /// Under mpiexec: every process draws the same problems from the same seed; each runs on the job's first ranks (a
    /// sub-group), and the job sums the mismatches. No faults: an MPI job ends on a failed collective (MPI_Abort),
    /// which the MPI tests cover; here the job must stay bitwise right across hundreds of configurations.
    /// </summary>
    private static SoakTally? OnMpiJob(SoakSettings s, SoakDevices devices)
    {
        using MpiProcessGroup job = MpiProcessGroup.InitWorld(TimeSpan.FromSeconds(30));
        var random = new Random(s.Seed);
        var tally = new SoakTally();
        var clock = Stopwatch.StartNew();
        try
        {
            while (true)
            {
                // Rank 0's clock decides for everyone, so all processes run the same number of problems.
                bool more = clock.Elapsed.TotalSeconds < s.Seconds && (s.Runs is null || tally.Runs < s.Runs);
                Span<long> go = [job.Rank == 0 && more ? 1 : 0];
                job.AllReduceSum(go);
                if (go[0] == 0)
                    break;
                DispatchCase problem = SoakConfiguration.Draw(random, job.Size, random.Next(1, job.Size + 1));
                bool participates = job.Rank < problem.World;
                using IProcessGroup group = job.Split(participates ? 0 : 1, job.Rank);
                var recorded = new FaultInjectingProcessGroup(group, null);
                string? mismatch = participates
                    ? SoakRank.Run(recorded, problem, SoakRank.References(problem), devices)
                    : null;
                if (s.FaultOnce && problem.World > 1 && mismatch is null)
                    FaultOnce(job, group, problem, recorded, random, devices);
                string? first = RankMessages.FirstInRankOrder(job, mismatch);
                tally.Runs++;
                if (first is null)
                    continue;
                tally.Wrong++;
                if (job.Rank == 0)
                {
                    Console.Error.WriteLine($"soak run {tally.Runs} ({SoakConfiguration.Describe(problem)}): {first}");
                }
            }
        }
        catch (Exception ex)
        {
            job.Abort(ex);
            throw;
        }
        return job.Rank == 0 ? tally : null;
    }
}
