using System.Text.Json;
using MoeSharp.Cli.Config;
using static MoeSharp.Tests.Cli.CliInvoker;

namespace MoeSharp.Tests.Cli;

/// <summary><c>--config job.toml</c>: the example job file, precedence, and one-line errors.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class CliConfigTests : IDisposable
{
    private readonly string _dir = TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Example => Path.Combine(RepositoryRoot(), "docs", "examples", "train.toml");

    [Fact]
    public void ExampleJobFile_Trains_WithTheCommandLineOverridingIt()
    {
        string metrics = Path.Combine(_dir, "m.jsonl");
        CliOutcome result = Invoke("train", "--config", Example, "--steps", "3", "--metrics", metrics);
        Assert.True(result.ExitCode == 0, result.ToString());

        string[] lines = File.ReadAllLines(metrics);
        Assert.Equal(3, lines.Length); // --steps 3 beats both [training] steps = 30 and [train] steps = 40
        JsonElement first = JsonDocument.Parse(lines[0]).RootElement;
        Assert.Equal(7, first.GetProperty("seed").GetInt32());
        Assert.Equal(2, first.GetProperty("world").GetInt32());
        Assert.Equal("sigmoid", first.GetProperty("score_func").GetString());
        Assert.True(first.GetProperty("route_norm").GetBoolean());
        Assert.Equal(2.5, first.GetProperty("route_scale").GetDouble());
        Assert.Equal(4, first.GetProperty("expert_groups").GetInt32());
        Assert.Equal(2, first.GetProperty("limited_groups").GetInt32());
    }

    [Fact]
    public void CommandSection_OverridesGenericSections_AndAppliesOnlyToItsCommand()
    {
        string[] train = JobConfig.Expand(["train", "--config", Example]);
        Assert.Contains("--steps=40", train);
        Assert.Contains("--score-func=sigmoid", train);
        Assert.Contains("--route-norm", train);

        // moe run takes the keys it has (world, seed, …) and skips train's own ones.
        string[] run = JobConfig.Expand(["run", "--config", Example, "--seed", "3"]);
        Assert.Contains("--world=2", run);
        Assert.Equal("3", After(run, "--seed"));
        Assert.DoesNotContain(run, a => a.StartsWith("--seed=", StringComparison.Ordinal));
        Assert.DoesNotContain(run, a => a.StartsWith("--steps", StringComparison.Ordinal));
        Assert.DoesNotContain(run, a => a.StartsWith("--score-func", StringComparison.Ordinal));
    }

    [Fact]
    public void WithoutConfig_ArgumentsAreUnchanged()
    {
        string[] args = ["train", "--steps", "3"];
        Assert.Same(args, JobConfig.Expand(args));
    }

    [Theory]
    [InlineData("[training]\nstepz = 5\n", "[training] unknown key 'stepz' (= 5)")]
    [InlineData("[training]\nsteps = \"five\"\n", "[training] steps = \"five\": expected an integer (--steps)")]
    [InlineData("[optimizer]\nlr = \"fast\"\n", "[optimizer] lr = \"fast\": expected a number (--lr)")]
    [InlineData("[moe]\nroute_norm = 1\n", "[moe] route_norm = 1: expected true or false (--route-norm)")]
    [InlineData("[model]\ndim = 1.5\n", "[model] dim = 1.5: expected an integer (--dim)")]
    [InlineData("[trainin]\nsteps = 5\n", "unknown section [trainin]")]
    [InlineData("steps = 5\n", "'steps' = 5 is outside a section")]
    [InlineData("[bench]\nstepz = 5\n", "[bench] unknown key 'stepz'")]
    [InlineData("[training\nsteps = 5\n", "not valid TOML")]
    [InlineData("[[training]]\nsteps = 5\n", "[[training]] is an array of tables")]
    [InlineData("[checkpoint]\nsave = \"\"\n", "[checkpoint] save = \"\": expected a value (--save)")]
    public void BadJobFiles_AreOneLineNamingFileKeyAndValue(string toml, string expected)
    {
        string path = Path.Combine(_dir, "job.toml");
        File.WriteAllText(path, toml);
        string line = AssertUsageError(Invoke("train", "--config", path));
        Assert.Contains(path, line);
        Assert.Contains(expected, line);
    }

    [Fact]
    public void MissingJobFile_IsAUsageError()
    {
        string line = AssertUsageError(Invoke("train", "--config", Path.Combine(_dir, "none.toml")));
        Assert.Contains("--config", line);
    }

    [Fact]
    public void AJobFileThatNeverEnds_IsRefusedAtItsBound_NotReadUntilMemoryRunsOut()
    {
        string line = AssertUsageError(Invoke("train", "--config", "/dev/zero"));
        Assert.StartsWith(
            "moe: --config /dev/zero: /dev/zero: more than 16777216 bytes",
            line,
            StringComparison.Ordinal
        );
    }

    [Fact]
    public void ValuesFromTheFile_AreValidatedLikeTypedOnes()
    {
        string path = Path.Combine(_dir, "job.toml");
        File.WriteAllText(path, "[model]\nexperts = 6\n[parallelism]\nworld = 4\n");
        string line = AssertUsageError(Invoke("train", "--config", path));
        Assert.Contains("--experts 6", line);
    }

    [Theory]
    [InlineData("[train]\nsave = \"--world=2\"\n", "--save=--world=2")]
    [InlineData("[checkpoint]\nsave = \"--steps\"\n", "--save=--steps")]
    [InlineData("[optimizer]\nlr = -inf\n", "--lr=-Infinity")]
    public void StringsThatLookLikeOptions_StayValues(string toml, string token)
    {
        string path = Path.Combine(_dir, "job.toml");
        File.WriteAllText(path, toml);
        string[] args = JobConfig.Expand(["train", "--config", path]);
        Assert.Equal(["train", "--config", path, token], args);
    }

    [Theory]
    [InlineData("[parallelism]\nlayout = \"--help\"\n", "--layout '--help'", "[parallelism] layout = \"--help\"")]
    [InlineData("[optimizer]\nlr = -inf\n", "--lr -Infinity must be positive", "[optimizer] lr = -Infinity")]
    public void ValuesTheOptionRejects_NameTheFileAndKey(string toml, string rejected, string key)
    {
        string path = Path.Combine(_dir, "job.toml");
        File.WriteAllText(path, toml);
        CliOutcome result = Invoke("train", "--steps", "1", "--config", path);
        string line = AssertUsageError(result);
        Assert.Contains(rejected, line);
        Assert.Contains($"--config {path}: {key}", line);
        Assert.DoesNotContain("USAGE", result.Out); // --help is a value here, not a request for help
    }

    private static string After(string[] args, string option) => args[Array.LastIndexOf(args, option) + 1];
}
