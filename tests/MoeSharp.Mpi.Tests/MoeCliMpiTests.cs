using System.Text.Json;
using System.Text.RegularExpressions;

namespace MoeSharp.Mpi.Tests;

/// <summary>
/// The real <c>moe</c> CLI under <c>mpiexec</c> (Open MPI and MPICH): <c>run</c>, <c>verify-golden</c>,
/// <c>train</c> and <c>bench</c> with <c>--comm mpi</c>, and a job size that disagrees with <c>--world</c>.
/// Sizes are small: these check wiring and bitwise agreement, not speed.
/// </summary>
[Collection(MpiCollection.Name)]
public sealed partial class MoeCliMpiTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(3);

    [MpiFact]
    public void Run_on_4_ranks_verifies_once() => RunVerifiesOnce(MpiLauncher.Default);

    [MpiFact(Mpich = true)]
    public void Mpich_run_on_4_ranks_verifies_once() => RunVerifiesOnce(MpiLauncher.Mpich);

    [MpiFact]
    public void Verify_golden_on_8_ranks_passes_every_file() => VerifyGoldenPasses(MpiLauncher.Default);

    [MpiFact(Mpich = true)]
    public void Mpich_verify_golden_on_8_ranks_passes_every_file() => VerifyGoldenPasses(MpiLauncher.Mpich);

    [MpiFact]
    public void Train_on_4_ranks_matches_in_process_losses_bitwise() => TrainMatchesInProcess(MpiLauncher.Default);

    [MpiFact(Mpich = true)]
    public void Mpich_train_on_4_ranks_matches_in_process_losses_bitwise() => TrainMatchesInProcess(MpiLauncher.Mpich);

    [MpiFact]
    public void Train_without_world_takes_the_job_size()
    {
        // --sp 2 with no --world: the job's two ranks are the world (checked at run time, not against a default of 1).
        MpiRun run = MpiLauncher.Default.RunMoe(
            2,
            ["train", "--comm", "mpi", "--sp", "2", "--layout", "sharded", "--steps", "3", "--log-every", "1"],
            Limit
        );
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("train: world 2, sp 2", Plain(run.Output));
        Assert.Equal(3, LossBits(run.Output).Length);
    }

    [MpiFact]
    public void Bench_json_has_raw_alltoallv() => BenchJson(MpiLauncher.Default);

    [MpiFact(Mpich = true)]
    public void Mpich_bench_json_has_raw_alltoallv() => BenchJson(MpiLauncher.Mpich);

    [MpiFact]
    public void World_that_disagrees_with_the_job_is_one_usage_line() => WorldMismatch(MpiLauncher.Default);

    [MpiFact(Mpich = true)]
    public void Mpich_world_that_disagrees_with_the_job_is_one_usage_line() => WorldMismatch(MpiLauncher.Mpich);

    [MpiFact]
    public void Bench_whose_raw_alltoallv_bytes_exceed_an_int_is_one_usage_line()
    {
        // 6e8 rows of 4 bytes per rank: the raw baseline's int byte counts would wrap (refused before any rank runs).
        MpiRun run = MpiLauncher.Default.RunMoe(
            2,
            ["bench", "--comm", "mpi", "--tokens", "600000000", "--dim", "1", "--experts", "2", "--top-k", "1"],
            Limit
        );
        Assert.True(run.ExitCode == 2, run.ToString());
        string[] lines = Plain(run.Output + "\n" + run.Error)
            .Split('\n')
            .Where(l => l.Contains("MPI_Alltoallv"))
            .ToArray();
        // Validation runs in every process, each printing its one line (the same line).
        Assert.True(lines.Length >= 1 && lines.Distinct().Count() == 1, run.ToString());
        Assert.Contains("--tokens 600000000 --top-k 1 --dim 1: each rank sends 2400000000 bytes", lines[0]);
    }

    [MpiFact]
    public void Fp8_wire_run_verifies_over_mpi()
    {
        // FP8 wire rows are int32 tensors: the same all-to-all-v as the counts, through MPI between processes.
        MpiRun run = MpiLauncher.Default.RunMoe(
            4,
            ["run", "--comm", "mpi", "--world", "4", "--sp", "2", "--tokens", "301", "--dim", "130", "--wire", "fp8"],
            Limit
        );
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("FP8 rows on the wire", Plain(run.Output));
        Assert.Single(Regex.Matches(Plain(run.Output), "verified: bitwise identical to the single-rank reference"));
    }

    private static void RunVerifiesOnce(MpiLauncher launcher)
    {
        MpiRun run = launcher.RunMoe(
            4,
            ["run", "--comm", "mpi", "--world", "4", "--sp", "2", "--tokens", "1001"],
            Limit
        );
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Single(Regex.Matches(Plain(run.Output), "verified: bitwise identical to the single-rank reference"));
    }

    private static void VerifyGoldenPasses(MpiLauncher launcher)
    {
        IReadOnlyList<string> files = GoldenFolder.SafetensorsFiles();
        Assert.NotEmpty(files);
        MpiRun run = launcher.RunMoe(8, ["verify-golden", "--comm", "mpi", .. files], Limit);
        Assert.True(run.ExitCode == 0, run.ToString());
        string[] lines = Plain(run.Output).Split('\n');
        foreach (string file in files.Select(f => Path.GetFileName(f)))
            Assert.True(
                lines.Count(l => l.StartsWith($"PASS {file}", StringComparison.Ordinal)) == 1,
                $"{file} did not pass once\n{run}"
            );
        Assert.Contains($"{files.Count} passed, 0 failed, 0 skipped, 0 not applicable", Plain(run.Output));
    }

    private static void TrainMatchesInProcess(MpiLauncher launcher)
    {
        string[] options = ["--world", "4", "--sp", "2", "--steps", "20", "--log-every", "1"];
        MpiRun inProcess = MpiLauncher.RunMoeInProcess(["train", .. options], Limit);
        Assert.True(inProcess.ExitCode == 0, inProcess.ToString());
        MpiRun mpi = launcher.RunMoe(4, ["train", "--comm", "mpi", .. options], Limit);
        Assert.True(mpi.ExitCode == 0, mpi.ToString());

        string[] expected = LossBits(inProcess.Output);
        Assert.Equal(20, expected.Length);
        Assert.Equal(expected, LossBits(mpi.Output));
    }

    private static void BenchJson(MpiLauncher launcher)
    {
        MpiRun run = launcher.RunMoe(
            2,
            ["bench", "--comm", "mpi", "--tokens", "512", "--dim", "256", "--repeats", "3", "--warmup", "1", "--json"],
            Limit
        );
        Assert.True(run.ExitCode == 0, run.ToString());
        // One moesharp-metrics/1 record per measurement (docs/metrics.md), from rank 0 only.
        string[] lines = Plain(run.Output)
            .Split('\n')
            .Where(l => l.TrimStart().StartsWith('{'))
            .Select(l => l.Trim())
            .ToArray();
        JsonElement[] records = lines.Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToArray();
        JsonElement Kind(string kind) => records.Single(r => r.GetProperty("kind").GetString() == kind);
        Assert.All(records, r => Assert.Equal(2, r.GetProperty("world").GetInt32()));
        Assert.True(Kind("mpi_alltoallv").GetProperty("ms").GetDouble() > 0, string.Join("\n", lines));
        Assert.True(Kind("exchange").GetProperty("ms").GetDouble() > 0, string.Join("\n", lines));
    }

    private static void WorldMismatch(MpiLauncher launcher)
    {
        MpiRun run = launcher.RunMoe(2, ["run", "--comm", "mpi", "--world", "4"], Limit);
        Assert.True(run.ExitCode != 0, run.ToString());
        string[] lines = Plain(run.Output + "\n" + run.Error).Split('\n').Where(l => l.Contains("--world")).ToArray();
        Assert.True(lines.Length == 1, run.ToString());
        Assert.Contains("--world 4 but the MPI job has 2 ranks", lines[0]);
    }

    /// <summary>The loss bits of every printed step, in step order.</summary>
    private static string[] LossBits(string output) =>
        StepLoss().Matches(Plain(output)).Select(m => $"{m.Groups[1].Value}:{m.Groups[2].Value}").ToArray();

    /// <summary>
    /// Output without terminal escapes: Open MPI gives ranks a pseudo-terminal, so colors come through.
    /// </summary>
    private static string Plain(string text) => Escape().Replace(text, "").Replace("\r", "");

    [GeneratedRegex(@"step\s+(\d+)\s+loss \S+ \((0x[0-9A-F]{16})\)")]
    private static partial Regex StepLoss();

    [GeneratedRegex(@"\x1b(\[[0-9;?]*[A-Za-z]|[=>])")]
    private static partial Regex Escape();
}
