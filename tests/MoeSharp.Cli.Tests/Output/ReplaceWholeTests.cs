using MoeSharp.Cli.Output;
using static MoeSharp.Tests.Cli.CliInvoker;

namespace MoeSharp.Tests.Cli;

/// <summary>
/// <see cref="OutputPaths.ReplaceWhole"/> (<c>--plot</c>, <c>--traffic</c>): a write that fails part way leaves the
/// old file and no temporary, and the error names the file the user gave, not the hidden temporary.
/// </summary>
public sealed class ReplaceWholeTests : IDisposable
{
    private readonly string _dir = TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void FailedWrite_KeepsTheOldFileAndNamesTheTarget()
    {
        string path = Path.Combine(_dir, "loss.png");
        File.WriteAllText(path, "old plot");

        var error = Assert.Throws<IOException>(() =>
            OutputPaths.ReplaceWhole(
                path,
                temporary =>
                {
                    File.WriteAllText(temporary, "half a plo");
                    throw new IOException($"No space left on device : '{temporary}'");
                }
            )
        );

        Assert.Equal($"No space left on device : '{path}'", error.Message);
        Assert.Equal("old plot", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(_dir));
    }
}
