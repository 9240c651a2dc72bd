using MoeSharp.Tests.Checkpoints;
using MoeSharp.Tests.Cli;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// Options whose values are out of the documented bounds: refused at validation with one line naming the option and
/// exit code 2, never an overflow, a library exception or a run that ignores them.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class OptionBoundsTests
{
    [Theory]
    [InlineData("--timeout", "train", "--steps", "1", "--timeout", "1e-300")]
    [InlineData("--timeout", "verify-golden", "x.safetensors", "--timeout", "1e-9")]
    [InlineData("--timeout", "run", "--timeout", "0.0009")]
    [InlineData(
        "--repeats",
        "bench",
        "--tokens",
        "64",
        "--dim",
        "16",
        "--experts",
        "8",
        "--top-k",
        "2",
        "--repeats",
        "2147483647"
    )]
    [InlineData(
        "--warmup",
        "bench",
        "--tokens",
        "64",
        "--dim",
        "16",
        "--experts",
        "8",
        "--top-k",
        "2",
        "--warmup",
        "2147483647"
    )]
    [InlineData(
        "--repeats",
        "bench",
        "--tokens",
        "64",
        "--dim",
        "16",
        "--experts",
        "8",
        "--top-k",
        "2",
        "--layer",
        "--repeats",
        "2147483647"
    )]
    [InlineData(
        "--warmup",
        "bench",
        "--tokens",
        "64",
        "--dim",
        "16",
        "--experts",
        "8",
        "--top-k",
        "2",
        "--uneven",
        "--warmup",
        "2147483647"
    )]
    [InlineData("--steps", "train", "--steps", "2147483647")]
    [InlineData("--repeats", "bench-cpu", "--repeats", "2147483647")]
    [InlineData("--warmup", "bench-cpu", "--warmup", "2147483647")]
    [InlineData("--threads", "bench-cpu", "--threads", "2147483647")]
    [InlineData("--probe-rounds", "bench-cpu", "--probe-rounds", "2147483647")]
    [InlineData("--fma-units", "bench-cpu", "--fma-units", "2147483647")]
    [InlineData("--fma-lanes", "bench-cpu", "--fma-lanes", "2147483647")]
    [InlineData("--ghz", "bench-cpu", "--ghz", "NaN")]
    [InlineData("--ghz", "bench-cpu", "--ghz", "Infinity")]
    [InlineData("--ghz", "bench-cpu", "--ghz", "1e308")]
    [InlineData("--what", "bench-cpu", "--what", "")]
    [InlineData("--what", "bench-cpu", "--what", ",")]
    public void OutOfBounds_IsExit2_NamingTheOption(string option, params string[] args)
    {
        string line = CliInvoker.AssertUsageError(CliInvoker.Invoke(args));
        Assert.Contains(option, line);
        Assert.DoesNotContain("TimeSpan", line);
    }

    [Theory]
    [InlineData("--timeout", "Infinity")]
    [InlineData("--timeout", "1e308")]
    [InlineData("--timeout", "NaN")]
    [InlineData("--world", "2", "--timeout", "1e-300")]
    public void Layer_OutOfBounds_IsExit2_NamingTheOption(params string[] options)
    {
        string line = CliInvoker.AssertUsageError(CliInvoker.Invoke(Layer(options)));
        Assert.Contains(options[^2], line);
        Assert.DoesNotContain("TimeSpan", line);
    }

    /// <summary><c>moe layer</c> on layer 0 of the small Mixtral checkpoint, with <paramref name="options"/>.</summary>
    private static string[] Layer(params string[] options) =>
        ["layer", "--checkpoint", CheckpointData.Folder("mixtral"), "--layer", "0", .. options];
}
