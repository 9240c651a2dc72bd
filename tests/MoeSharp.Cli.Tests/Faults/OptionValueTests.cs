using MoeSharp.Tests.Cli;
using static MoeSharp.Tests.Cli.CliInvoker;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// An option that takes a value but is given none: the parser used to bind its placeholder <c>__default_command</c>
/// (and save or write metrics into a path of that name); now one usage line naming the option.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class OptionValueTests
{
    private static string Qwen3Moe =>
        Path.Combine(RepositoryRoot(), "tests", "MoeSharp.Tests", "Checkpoints", "data", "qwen3_moe");

    [Theory]
    [InlineData("--save needs a value", "train", "--steps", "1", "--save")]
    [InlineData("--metrics needs a value", "run", "--tokens", "8", "--metrics")]
    [InlineData("--metrics needs a value, but '--seed=3' follows it", "train", "--steps", "1", "--metrics", "--seed=3")]
    [InlineData("--config needs a value", "train", "--config")]
    [InlineData("--config needs a value", "train", "--steps", "1", "--config", "")]
    [InlineData("--lr needs a value", "train", "--steps", "1", "--lr")]
    [InlineData("--world needs a value", "train", "--steps", "1", "--world")]
    [InlineData("--save needs a value, not an empty one", "train", "--steps", "1", "--save=")]
    [InlineData("--save needs a value, but '-x' follows it", "train", "--steps", "1", "--save", "-x")]
    [InlineData("--seed '__default_command' is not a value", "train", "--steps", "1", "--seed", "__default_command")]
    public void OptionWithoutAValue_IsAUsageErrorNamingIt(string expected, params string[] args)
    {
        string line = AssertUsageError(Invoke(args));
        Assert.Contains(expected, line);
    }

    [Fact]
    public void LayerCheckpointFollowedByAnOption_IsAUsageError()
    {
        string line = AssertUsageError(Invoke("layer", "--checkpoint", "--layer", "1"));
        Assert.Contains("--checkpoint needs a value, but '--layer' follows it", line);
    }

    [Fact]
    public void LayerOutputWithoutAValue_IsAUsageError()
    {
        string line = AssertUsageError(Invoke("layer", "--checkpoint", Qwen3Moe, "--layer", "1", "--output"));
        Assert.Contains("--output needs a value", line);
    }

    [Theory]
    [InlineData("-Infinity", "--lr -Infinity must be positive")]
    [InlineData("-1e5", "--lr -100000 must be positive")]
    [InlineData("-inf", "--lr '-inf' is not a number")]
    public void NegativeNumbers_AreValues(string value, string expected)
    {
        string line = AssertUsageError(Invoke("train", "--steps", "1", "--lr", value));
        Assert.Contains(expected, line);
    }

    [Fact]
    public void EmptyGoldenFile_NamesTheArgument()
    {
        string line = AssertUsageError(Invoke("verify-golden", ""));
        Assert.Contains("FILES", line);
        Assert.DoesNotContain("Parameter", line);
    }
}
