using System.Text.Json;
using MoeSharp.Cli;
using MoeSharp.Cli.Output;
using Spectre.Console;
using static MoeSharp.Tests.Cli.CliInvoker;

namespace MoeSharp.Tests.Cli;

/// <summary>
/// --version, the metrics schema on run and bench, the MPI-job check, the console and progress conventions.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class CliOutputConventionsTests : IDisposable
{
    private readonly string _dir = TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Version_PrintsTheInformationalVersion()
    {
        CliOutcome result = Invoke("--version");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.False(string.IsNullOrWhiteSpace(CliApp.Version));
        Assert.Equal(CliApp.Version, result.Out.Trim());
    }

    [Fact]
    public void Run_Metrics_OneRecordPerCase()
    {
        string metrics = Path.Combine(_dir, "run.jsonl");
        CliOutcome result = Invoke(
            "run",
            "--world",
            "2",
            "--sp",
            "1",
            "--tokens",
            "33",
            "--dim",
            "4",
            "--experts",
            "4",
            "--top-k",
            "2",
            "--metrics",
            metrics
        );
        Assert.True(result.ExitCode == 0, result.ToString());
        JsonElement line = JsonDocument.Parse(Assert.Single(File.ReadAllLines(metrics))).RootElement;
        Assert.Equal("moesharp-metrics/1", line.GetProperty("schema").GetString());
        Assert.Equal("run", line.GetProperty("command").GetString());
        Assert.Equal("case", line.GetProperty("event").GetString());
        Assert.True(line.GetProperty("verified").GetBoolean());
        Assert.Equal(33, line.GetProperty("tokens").GetInt32());
        Assert.Equal(2, line.GetProperty("rows_sent").GetArrayLength());
    }

    [Fact]
    public void Bench_MetricsFile_AndJson_AreTheSameRecords()
    {
        string metrics = Path.Combine(_dir, "bench.jsonl");
        string[] args =
        [
            "bench",
            "--world",
            "2",
            "--tokens",
            "64",
            "--dim",
            "16",
            "--experts",
            "4",
            "--top-k",
            "2",
            "--repeats",
            "1",
            "--warmup",
            "0",
        ];
        CliOutcome table = Invoke([.. args, "--metrics", metrics]);
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Contains("dispatch + combine", table.Out);
        CliOutcome json = Invoke([.. args, "--json"]);
        Assert.True(json.ExitCode == 0, json.ToString());

        JsonElement[] file = File.ReadAllLines(metrics)
            .Select(l => JsonDocument.Parse(l).RootElement.Clone())
            .ToArray();
        JsonElement[] stdout = json
            .Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.Clone())
            .ToArray();
        string[] kinds = ["dispatch", "combine", "dispatch_combine", "copy", "exchange"];
        Assert.Equal(kinds, file.Select(r => r.GetProperty("kind").GetString()));
        Assert.Equal(kinds, stdout.Select(r => r.GetProperty("kind").GetString()));
        foreach (JsonElement r in file.Concat(stdout))
        {
            Assert.Equal("moesharp-metrics/1", r.GetProperty("schema").GetString());
            Assert.Equal("bench", r.GetProperty("command").GetString());
            Assert.Equal("measurement", r.GetProperty("event").GetString());
            Assert.True(r.GetProperty("ms").GetDouble() > 0);
            Assert.Equal(2, r.GetProperty("world").GetInt32());
        }
    }

    [Fact]
    public void Bench_OnADevice_WritesTheSameSchema()
    {
        // ILGPU's CPU accelerator runs the device path without a GPU.
        string metrics = Path.Combine(_dir, "device.jsonl");
        CliOutcome result = Invoke(
            "bench",
            "--device",
            "ilgpu-cpu",
            "--world",
            "2",
            "--tokens",
            "64",
            "--dim",
            "16",
            "--experts",
            "4",
            "--top-k",
            "2",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--metrics",
            metrics
        );
        Assert.True(result.ExitCode == 0, result.ToString());
        JsonElement[] records = File.ReadAllLines(metrics)
            .Select(l => JsonDocument.Parse(l).RootElement.Clone())
            .ToArray();
        Assert.Contains(records, r => r.GetProperty("kind").GetString() == "dispatch_combine");
        foreach (JsonElement r in records)
        {
            Assert.Equal("moesharp-metrics/1", r.GetProperty("schema").GetString());
            Assert.Equal("bench", r.GetProperty("command").GetString());
            Assert.Equal("measurement", r.GetProperty("event").GetString());
            Assert.Equal("ilgpu-cpu", r.GetProperty("device").GetString());
            Assert.Equal(2, r.GetProperty("world").GetInt32());
            Assert.True(r.GetProperty("ms").GetDouble() > 0);
            Assert.Equal(64, r.GetProperty("tokens").GetInt32());
        }
    }

    [Theory]
    [InlineData("train", "--comm", "mpi", "--sp", "4")]
    [InlineData("run", "--comm", "mpi", "--sp", "4")]
    [InlineData("bench", "--comm", "mpi")]
    [InlineData("verify-golden", "--comm", "mpi", "x.safetensors")]
    [InlineData("soak", "--comm", "mpi", "--runs", "1")]
    public void CommMpi_OutsideAnMpiJob_SaysSo(params string[] args)
    {
        if (MoeSharp.Cli.Commands.MpiJob.IsLaunched)
            return; // the tests themselves run under an MPI launcher: nothing to check
        string line = AssertUsageError(Invoke(args));
        Assert.Contains("not part of an MPI job", line);
        Assert.Contains("mpiexec", line);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void Console_WritesNoEscapeCodes_OffATerminalOrUnderMpi(bool terminal, bool underMpi)
    {
        var output = new StringWriter();
        IAnsiConsole console = AnsiConsole.Create(ConsoleSetup.Settings(output, terminal, underMpi));
        console.MarkupLine("[green]verified[/] [bold red]x[/]");
        Assert.Equal("verified x", output.ToString().Trim());
        Assert.False(console.Profile.Capabilities.Interactive);
    }

    [Fact]
    public void Progress_PlainLines_WaitForTheInterval()
    {
        var error = new StringWriter();
        var progress = new ProgressLine("train", error, inPlace: false);
        progress.Report(1, 10, "steps");
        progress.Report(10, 10, "steps");
        progress.Finish();
        Assert.Equal("", error.ToString()); // a short run prints nothing extra
    }

    [Fact]
    public void Progress_InPlace_RedrawsOneLine_AndEndsIt()
    {
        var error = new StringWriter();
        var progress = new ProgressLine("bench", error, inPlace: true);
        progress.Report(0, 9, "runs"); // drawn at once: the run has started
        progress.Report(1, 9, "runs"); // within the redraw interval: skipped
        Thread.Sleep(250);
        progress.Report(3, 9, "runs");
        progress.Report(9, 9, "runs");
        string text = error.ToString();
        Assert.StartsWith("\rbench: 0/9 runs", text);
        Assert.DoesNotContain("1/9", text);
        Assert.Contains("\rbench: 3/9 runs", text);
        Assert.EndsWith("\n", text);
        Assert.Contains("\rbench: 9/9 runs", text);
    }

    [Fact]
    public void MetricsRecord_WritesNaNLosses_AsStrings()
    {
        string json = MetricsRecord.Create("train", "step").With("step", 1).With("loss", double.NaN).ToJson();
        Assert.Equal(
            """{"schema":"moesharp-metrics/1","command":"train","event":"step","step":1,"loss":"NaN"}""",
            json
        );
    }
}
