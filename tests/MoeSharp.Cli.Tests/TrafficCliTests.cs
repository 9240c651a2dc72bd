using System.Text.Json;
using MoeSharp.Cli.Output;
using SkiaSharp;
using static MoeSharp.Tests.Cli.CliInvoker;

namespace MoeSharp.Tests.Cli;

/// <summary><c>--traffic</c> on run, train and bench: the PNG, the <c>traffic</c> metrics lines, bad input.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class TrafficCliTests : IDisposable
{
    private static readonly string[] RunCase =
    [
        "run",
        "--world",
        "4",
        "--sp",
        "1",
        "--tokens",
        "33",
        "--dim",
        "4",
        "--experts",
        "8",
        "--top-k",
        "2",
    ];
    private static readonly string[] TrainCase = ["train", "--steps", "3", "--world", "2", "--sp", "1", .. SmallTrain];

    private readonly string _dir = TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static JsonElement[] Lines(string path, string eventName) =>
        File.ReadAllLines(path)
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Where(r => r.GetProperty("event").GetString() == eventName)
            .ToArray();

    private static void AssertPng(string path)
    {
        using SKBitmap? bitmap = SKBitmap.Decode(path);
        Assert.NotNull(bitmap);
        Assert.Equal(800, bitmap.Width);
        Assert.Equal(600, bitmap.Height);
    }

    [Fact]
    public void Run_Traffic_WritesTheHeatmap_AndATrafficLineMatchingWhatEachRankSent()
    {
        string png = Path.Combine(_dir, "traffic.png"),
            metrics = Path.Combine(_dir, "m.jsonl");
        CliOutcome result = Invoke([.. RunCase, "--traffic", png, "--metrics", metrics]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("traffic heatmap written to", result.Out);
        AssertPng(png);
        // Nothing else in the folder: no temporary file left beside the PNG.
        Assert.Equal(["m.jsonl", "traffic.png"], Directory.GetFiles(_dir).Select(Path.GetFileName).Order());

        JsonElement run = Assert.Single(Lines(metrics, "case"));
        JsonElement traffic = Assert.Single(Lines(metrics, "traffic"));
        Assert.Equal("run", traffic.GetProperty("command").GetString());
        Assert.Equal(1, traffic.GetProperty("step").GetInt32());
        Assert.Equal(4 * 33 * 2, traffic.GetProperty("rows_total").GetInt64());
        Assert.Equal(4 * 33 * 2 * 4 * sizeof(float), traffic.GetProperty("bytes_total").GetInt64());
        for (int r = 0; r < 4; r++)
        {
            long sent = traffic.GetProperty("rows_between_ranks")[r].EnumerateArray().Sum(v => v.GetInt64());
            long received = Enumerable.Range(0, 4).Sum(s => traffic.GetProperty("rows_between_ranks")[s][r].GetInt64());
            Assert.Equal(run.GetProperty("rows_sent")[r].GetInt64(), sent);
            Assert.Equal(run.GetProperty("rows_received")[r].GetInt64(), received);
            Assert.Equal(3, traffic.GetProperty("exchange_wait_ms")[r].GetArrayLength());
        }
    }

    [Fact]
    public void Run_WithoutTraffic_WritesNoTrafficLine()
    {
        string metrics = Path.Combine(_dir, "m.jsonl");
        Assert.Equal(0, Invoke([.. RunCase, "--metrics", metrics]).ExitCode);
        Assert.Empty(Lines(metrics, "traffic"));
        Assert.Single(Lines(metrics, "case"));
    }

    [Fact]
    public void Train_Traffic_OneLinePerStep_AndTheHeatmapOfAllSteps()
    {
        string png = Path.Combine(_dir, "t.png"),
            metrics = Path.Combine(_dir, "m.jsonl");
        CliOutcome result = Invoke([.. TrainCase, "--traffic", png, "--metrics", metrics]);
        Assert.True(result.ExitCode == 0, result.ToString());
        AssertPng(png);
        JsonElement[] lines = Lines(metrics, "traffic");
        Assert.Equal([1, 2, 3], lines.Select(l => l.GetProperty("step").GetInt32()));
        // Each rank routes its 16 tokens (32 over 2 data-parallel groups) to K = 2 experts every step.
        Assert.All(lines, l => Assert.Equal(2 * 16 * 2, l.GetProperty("rows_total").GetInt64()));
        Assert.All(lines, l => Assert.Equal("train", l.GetProperty("command").GetString()));
        Assert.Equal(3, Lines(metrics, "step").Length);
    }

    [Theory]
    [InlineData("run")]
    [InlineData("train")]
    public void Traffic_ToAMissingDirectory_IsAUsageError_AndNothingIsWritten(string command)
    {
        string[] head = command == "run" ? RunCase : TrainCase;
        string missing = Path.Combine(_dir, "no-such-dir", "t.png");
        string line = AssertUsageError(Invoke([.. head, "--traffic", missing, "--metrics", Path.Combine(_dir, "m")]));
        Assert.Contains("--traffic", line);
        Assert.Contains(missing, line);
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void Traffic_OnADirectory_IsAUsageError()
    {
        string line = AssertUsageError(Invoke([.. RunCase, "--traffic", _dir]));
        Assert.Equal($"moe: --traffic {_dir}: is a directory, not a file", line);
    }

    [Theory]
    [InlineData("--uneven")]
    [InlineData("--layer")]
    [InlineData("--gemm")]
    [InlineData("--device", "ilgpu-cpu")]
    public void Bench_Traffic_WithAnotherMode_IsAUsageError(string mode, string? value = null)
    {
        string[] args = value is null ? ["bench", "--traffic", mode] : ["bench", "--traffic", mode, value];
        string line = AssertUsageError(Invoke(args));
        string other = value is null ? mode : $"{mode} {value}";
        Assert.Equal($"moe: --traffic times the host dispatch benchmark, not with {other}", line);
    }

    [Fact]
    public void Bench_Traffic_TimesBothInOneRun()
    {
        CliOutcome result = Invoke(
            "bench",
            "--world",
            "2",
            "--tokens",
            "64",
            "--dim",
            "8",
            "--experts",
            "4",
            "--top-k",
            "2",
            "--warmup",
            "1",
            "--repeats",
            "3",
            "--traffic",
            "--json"
        );
        Assert.True(result.ExitCode == 0, result.ToString());
        JsonElement[] records = result
            .Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement)
            .ToArray();
        string[] kinds = records
            .Where(r => r.GetProperty("impl").GetString() == "moesharp-host-traffic")
            .Select(r => r.GetProperty("kind").GetString()!)
            .ToArray();
        Assert.Equal(["dispatch", "combine", "dispatch_combine", "traffic_work"], kinds);
        Assert.Contains(
            records,
            r =>
                r.GetProperty("impl").GetString() == "moesharp-host"
                && r.GetProperty("kind").GetString() == "dispatch_combine"
        );
        Assert.Contains(
            records,
            r =>
                r.GetProperty("impl").GetString() == "moesharp-host-control"
                && r.GetProperty("kind").GetString() == "dispatch_combine"
        );
    }

    [Fact]
    public void ReplaceWhole_LeavesTheOldFile_WhenTheWriteFails()
    {
        string path = Path.Combine(_dir, "t.png");
        File.WriteAllText(path, "old");
        Assert.Throws<IOException>(() =>
            OutputPaths.ReplaceWhole(
                path,
                temporary =>
                {
                    File.WriteAllText(temporary, "half");
                    throw new IOException("disk full");
                }
            )
        );
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(_dir));
    }
}
