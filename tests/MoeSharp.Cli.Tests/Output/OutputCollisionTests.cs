using static MoeSharp.Tests.Cli.CliInvoker;

namespace MoeSharp.Tests.Cli;

/// <summary>
/// An output path that is an input or another output is refused before any work (exit 2, naming both options and the
/// path): it replaced the job file, the metrics or the checkpoint silently, with exit 0.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class OutputCollisionTests : IDisposable
{
    private static readonly string[] OneStepTrain = ["--steps", "1", .. CliInvoker.SmallTrain];
    private static readonly string[] SmallRun = ["--tokens", "16", "--dim", "8", "--experts", "4", "--top-k", "2"];
    private readonly string _dir = TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("train", "--metrics", "--plot")]
    [InlineData("train", "--plot", "--traffic")]
    [InlineData("train", "--metrics", "--traffic")]
    [InlineData("run", "--metrics", "--traffic")]
    public void TwoOutputsOnOnePath_AreRefused(string command, string first, string second)
    {
        string path = Path.Combine(_dir, "same.out");
        string[] small = command == "train" ? OneStepTrain : SmallRun;

        CliOutcome result = Invoke([command, first, path, second, path, .. small]);

        AssertNamesBoth(result, first, second, path);
        Assert.False(File.Exists(path));
    }

    [Theory]
    [InlineData("train", "--metrics")]
    [InlineData("train", "--plot")]
    [InlineData("run", "--traffic")]
    [InlineData("bench", "--metrics")]
    public void AnOutputOnTheJobFile_IsRefusedAndTheJobFileKept(string command, string output)
    {
        string job = Path.Combine(_dir, "job.toml");
        File.WriteAllText(job, "# a job\n");
        string[] small = command == "train" ? OneStepTrain : [.. SmallRun, "--world", "2"];

        CliOutcome result = Invoke([command, "--config", job, output, job, .. small]);

        AssertNamesBoth(result, output, "--config", job);
        Assert.Equal("# a job\n", File.ReadAllText(job));
    }

    [Fact]
    public void AnOutputThroughALinkToTheJobFile_IsRefused()
    {
        string job = Path.Combine(_dir, "job.toml");
        File.WriteAllText(job, "# a job\n");
        string link = Path.Combine(_dir, "link.toml");
        File.CreateSymbolicLink(link, job);

        CliOutcome result = Invoke(["train", "--config", job, "--metrics", link, .. OneStepTrain]);

        AssertNamesBoth(result, "--metrics", "--config", job);
    }

    [Theory]
    [InlineData("layer.safetensors")]
    [InlineData("trainer.safetensors")]
    public void AnOutputOnAFileOfTheSaveDirectory_IsRefused(string file)
    {
        string checkpoint = Path.Combine(_dir, "ck");
        Directory.CreateDirectory(checkpoint);
        string path = Path.Combine(checkpoint, file);

        CliOutcome result = Invoke(["train", "--save", checkpoint, "--metrics", path, .. OneStepTrain]);

        AssertNamesBoth(result, "--metrics", "--save", path);
        Assert.Empty(Directory.EnumerateFileSystemEntries(checkpoint));
    }

    [Fact]
    public void AnOutputOnAFileOfTheLoadedCheckpoint_IsRefused_ButSavingOverItIsNot()
    {
        string checkpoint = Path.Combine(_dir, "ck");
        Assert.Equal(0, Invoke(["train", "--save", checkpoint, .. OneStepTrain]).ExitCode);
        string trainer = Path.Combine(checkpoint, "trainer.safetensors");
        byte[] saved = File.ReadAllBytes(trainer);
        string[] resume = ["train", "--load", checkpoint, .. OneStepTrain, "--steps", "2"];

        CliOutcome refused = Invoke([.. resume, "--plot", trainer]);

        AssertNamesBoth(refused, "--plot", "--load", trainer);
        Assert.Equal(saved, File.ReadAllBytes(trainer));
        CliOutcome resumed = Invoke([.. resume, "--save", checkpoint]);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
    }

    private static void AssertNamesBoth(CliOutcome result, string option, string other, string path)
    {
        string line = AssertUsageError(result);
        Assert.Contains($"{option} ", line);
        Assert.Contains($"{other} ", line);
        Assert.Contains(path, line);
    }
}
