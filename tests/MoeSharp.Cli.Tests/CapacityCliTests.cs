using System.Text.Json;
using static MoeSharp.Tests.Cli.CliInvoker;

namespace MoeSharp.Tests.Cli;

/// <summary><c>--capacity-factor</c> and <c>--capacity-rows</c> on run and bench: verified, reported, bad
/// input.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class CapacityCliTests
{
    private static readonly string[] RunCase =
    [
        "run",
        "--world",
        "4",
        "--sp",
        "2",
        "--tokens",
        "33",
        "--dim",
        "4",
        "--experts",
        "8",
        "--top-k",
        "2",
    ];

    [Fact]
    public void Run_WithAOneRowBound_VerifiesBitwise_AndReportsTheOverflowRound()
    {
        string dir = TempDirectory();
        try
        {
            string metrics = Path.Combine(dir, "m.jsonl");
            CliOutcome result = Invoke([.. RunCase, "--capacity-rows", "1", "--metrics", metrics]);
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains("capacity mode (1 rows per rank): the overflow round ran", result.Out);
            Assert.Contains("verified: bitwise identical", result.Out);
            JsonElement line = JsonDocument.Parse(File.ReadAllLines(metrics).Single()).RootElement;
            Assert.Equal("1 rows per rank", line.GetProperty("capacity").GetString());
            Assert.Equal(1, line.GetProperty("overflow_rounds").GetInt32());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Run_WithAFactorOfTheWorld_NeverOverflows()
    {
        CliOutcome result = Invoke([.. RunCase, "--capacity-factor", "4"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("the overflow round did not run", result.Out);
    }

    [Fact]
    public void Bench_TimesBothModes_AndChecksThemBitwise()
    {
        CliOutcome result = Invoke(
            "bench",
            "--capacity-factor",
            "1",
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
            "0",
            "--repeats",
            "2",
            "--json"
        );
        Assert.True(result.ExitCode == 0, result.ToString());
        JsonElement[] lines = result
            .Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement)
            .ToArray();
        Assert.Equal(["normal", "capacity"], lines.Select(l => l.GetProperty("impl").GetString()));
        Assert.All(lines, l => Assert.True(l.GetProperty("bitwise").GetBoolean()));
        Assert.All(lines, l => Assert.True(l.GetProperty("ms").GetDouble() > 0));
    }

    [Theory]
    [InlineData("--capacity-factor", "0", "--capacity-factor 0 must be a finite number above 0")]
    [InlineData("--capacity-factor", "NaN", "--capacity-factor NaN must be a finite number above 0")]
    [InlineData("--capacity-rows", "0", "--capacity-rows 0 must be at least 1")]
    public void BadBound_IsAUsageError_NamingTheOption(string option, string value, string expected)
    {
        Assert.Contains(expected, AssertUsageError(Invoke([.. RunCase, option, value])));
        Assert.Contains(expected, AssertUsageError(Invoke("bench", option, value)));
    }

    [Fact]
    public void BothBounds_OrCapacityWithTraffic_AreUsageErrors()
    {
        Assert.Contains(
            "give one of them",
            AssertUsageError(Invoke([.. RunCase, "--capacity-factor", "1", "--capacity-rows", "4"]))
        );
        Assert.Contains(
            "--traffic",
            AssertUsageError(Invoke([.. RunCase, "--capacity-factor", "1", "--traffic", "t.png"]))
        );
        Assert.Contains("--layer", AssertUsageError(Invoke("bench", "--capacity-factor", "1", "--layer")));
    }
}
