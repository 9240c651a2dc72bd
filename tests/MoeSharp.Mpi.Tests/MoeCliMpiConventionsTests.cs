using System.Text.Json;

namespace MoeSharp.Mpi.Tests;

/// <summary>
/// The CLI conventions under <c>mpiexec</c>: no escape codes in what the launcher forwards, <c>--metrics</c> written
/// once (by rank 0), and a checkpoint saved by an MPI job resumed in-process with the uninterrupted run's losses,
/// bitwise.
/// </summary>
[Collection(MpiCollection.Name)]
public sealed class MoeCliMpiConventionsTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(3);
    private static readonly string[] Small =
    [
        "--tokens",
        "32",
        "--dim",
        "8",
        "--hidden",
        "8",
        "--experts",
        "4",
        "--shared-hidden",
        "4",
        "--log-every",
        "1",
    ];

    [MpiFact]
    public void Train_metrics_and_save_under_mpi_resume_in_process_bitwise()
    {
        string dir = Path.Combine(Path.GetTempPath(), "moe-mpi-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string whole = Path.Combine(dir, "whole.jsonl"),
                first = Path.Combine(dir, "first.jsonl"),
                rest = Path.Combine(dir, "rest.jsonl");
            string checkpoint = Path.Combine(dir, "ck");
            MpiRun reference = MpiLauncher.RunMoeInProcess(
                ["train", "--steps", "6", "--metrics", whole, .. Small],
                Limit
            );
            Assert.True(reference.ExitCode == 0, reference.ToString());

            MpiRun mpi = MpiLauncher.Default.RunMoe(
                2,
                ["train", "--comm", "mpi", "--steps", "3", "--metrics", first, "--save", checkpoint, .. Small],
                Limit
            );
            Assert.True(mpi.ExitCode == 0, mpi.ToString());
            Assert.DoesNotContain('\u001b', mpi.Output);
            Assert.Equal(3, File.ReadAllLines(first).Length); // rank 0 only: one line per step

            MpiRun resumed = MpiLauncher.RunMoeInProcess(
                ["train", "--steps", "6", "--load", checkpoint, "--metrics", rest, .. Small],
                Limit
            );
            Assert.True(resumed.ExitCode == 0, resumed.ToString());
            Assert.Equal(Bits(whole), Bits(first).Concat(Bits(rest)).ToArray());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string[] Bits(string path) =>
        File.ReadAllLines(path)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss_bits").GetString()!)
            .ToArray();
}
