using System.Globalization;
using System.Text.RegularExpressions;

namespace MoeSharp.Mpi.Tests;

/// <summary>
/// Faults under MPI end the job by design (MPI_Abort): <c>moe soak --comm mpi --fault-once</c> throws on a random rank
/// at a random collective call of a real run; every process must be gone within the timeout + 2 s of the fault's
/// announcement, and the error must name the culprit. A few small separate jobs, so the time stays bounded.
/// </summary>
[Collection(MpiCollection.Name)]
public sealed partial class SoakFaultMpiTests
{
    private const double TimeoutSeconds = 2;

    [MpiFact]
    public void A_throw_at_a_random_collective_ends_every_process_naming_the_culprit()
    {
        foreach (int seed in new[] { 1, 2, 3 })
            EndsNamingTheCulprit(MpiLauncher.Default, seed);
    }

    [MpiFact(Mpich = true)]
    public void Mpich_a_throw_at_a_random_collective_ends_every_process_naming_the_culprit() =>
        EndsNamingTheCulprit(MpiLauncher.Mpich, 4);

    private static void EndsNamingTheCulprit(MpiLauncher launcher, int seed)
    {
        MpiRun run = launcher.RunMoe(
            3,
            [
                "soak",
                "--comm",
                "mpi",
                "--fault-once",
                "--seed",
                seed.ToString(CultureInfo.InvariantCulture),
                "--timeout",
                TimeoutSeconds.ToString(CultureInfo.InvariantCulture),
            ],
            TimeSpan.FromSeconds(90)
        );
        Assert.True(run.ExitCode != 0, run.ToString());
        Match announced = Announcement().Match(run.Error);
        Assert.True(announced.Success, run.ToString());
        int culprit = int.Parse(announced.Groups[1].Value, CultureInfo.InvariantCulture);
        double firedAfter = double.Parse(announced.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.True(
            run.Error.Contains(
                $"rank {culprit} failed: injected fault: rank {culprit} threw",
                StringComparison.Ordinal
            ),
            run.ToString()
        );
        // mpiexec returns only when every process of the job has ended; its whole run, measured from before rank 0
        // started, bounds the time from the announcement to the end from above.
        Assert.True(
            run.Elapsed.TotalSeconds - firedAfter <= TimeoutSeconds + 2,
            $"took {run.Elapsed.TotalSeconds - firedAfter:F1} s after the fault\n{run}"
        );
    }

    [GeneratedRegex(@"soak: injecting a throw on rank (\d+) at its collective call \d+ of \d+ after ([0-9.]+) s")]
    private static partial Regex Announcement();
}
