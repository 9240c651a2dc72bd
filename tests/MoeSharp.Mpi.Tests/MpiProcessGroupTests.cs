namespace MoeSharp.Mpi.Tests;

/// <summary>
/// Runs the driver's scenarios under <c>mpiexec</c>: each rank checks every collective against values it
/// computes itself and the job exits non-zero (naming the rank) on any mismatch.
/// </summary>
[Collection(MpiCollection.Name)]
public sealed class MpiProcessGroupTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(3);

    [MpiFact]
    public void Collectives_on_1_rank() => Passes(MpiLauncher.Default, 1, "collectives");

    [MpiFact]
    public void Collectives_on_2_ranks() => Passes(MpiLauncher.Default, 2, "collectives");

    [MpiFact]
    public void Collectives_on_4_ranks() => Passes(MpiLauncher.Default, 4, "collectives");

    [MpiFact]
    public void Large_message_path_on_3_ranks() => Passes(MpiLauncher.Default, 3, "collectives-large");

    [MpiFact]
    public void Failing_rank_ends_the_job_and_is_named() => FailureEndsJob(MpiLauncher.Default);

    [MpiFact]
    public void Missing_peer_ends_the_job_after_the_timeout()
    {
        MpiRun run = MpiLauncher.Default.Run(3, "timeout", Limit);
        Assert.True(run.ExitCode != 0, run.ToString());
        Assert.True(run.Elapsed < TimeSpan.FromSeconds(40), run.ToString());
        Assert.Contains("Barrier did not complete within", run.Error + run.Output);
    }

    [MpiFact(Mpich = true)]
    public void Mpich_collectives_on_4_ranks() => Passes(MpiLauncher.Mpich, 4, "collectives");

    [MpiFact(Mpich = true)]
    public void Mpich_large_message_path_on_3_ranks() => Passes(MpiLauncher.Mpich, 3, "collectives-large");

    [MpiFact(Mpich = true)]
    public void Mpich_failing_rank_ends_the_job_and_is_named() => FailureEndsJob(MpiLauncher.Mpich);

    private static void Passes(MpiLauncher launcher, int ranks, string scenario)
    {
        MpiRun run = launcher.Run(ranks, scenario, Limit);
        Assert.True(run.ExitCode == 0, run.ToString());
        for (int r = 0; r < ranks; r++)
            Assert.Contains($"rank {r} ok", run.Output);
    }

    private static void FailureEndsJob(MpiLauncher launcher)
    {
        MpiRun run = launcher.Run(4, "fail", Limit);
        Assert.True(run.ExitCode != 0, run.ToString());
        // The other ranks sit in a barrier (and would sleep a minute after it): only the abort ends them this soon.
        Assert.True(run.Elapsed < TimeSpan.FromSeconds(30), run.ToString());
        Assert.Contains("rank 1 failed: deliberate failure", run.Error + run.Output);
    }
}
