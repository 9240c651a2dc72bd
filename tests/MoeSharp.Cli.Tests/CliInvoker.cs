using MoeSharp.Cli;
using Spectre.Console;

namespace MoeSharp.Tests.Cli;

/// <summary>What one <see cref="CliApp.Run"/> returned and printed.</summary>
internal sealed record CliOutcome(int ExitCode, string Out, string Error)
{
    /// <summary>The lines of stderr, trimmed, without blanks.</summary>
    public string[] ErrorLines =>
        Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Out}\nstderr:\n{Error}";
}

/// <summary>Runs the CLI in-process with stdout (Console and Spectre's AnsiConsole) and stderr captured.</summary>
internal static class CliInvoker
{
    public static CliOutcome Invoke(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        TextWriter oldOut = Console.Out,
            oldError = Console.Error;
        IAnsiConsole oldAnsi = AnsiConsole.Console;
        IAnsiConsole captured = AnsiConsole.Create(
            new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(stdout),
                Ansi = AnsiSupport.No,
                ColorSystem = ColorSystemSupport.NoColors,
                Interactive = InteractionSupport.No,
            }
        );
        captured.Profile.Width = 200;
        Console.SetOut(stdout);
        Console.SetError(stderr);
        AnsiConsole.Console = captured;
        try
        {
            int code = CliApp.Run(args);
            return new CliOutcome(code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            AnsiConsole.Console = oldAnsi;
            Console.SetOut(oldOut);
            Console.SetError(oldError);
        }
    }

    /// <summary>Asserts exit code 2 and exactly one stderr line starting with <c>moe: </c>; returns the line.</summary>
    public static string AssertUsageError(CliOutcome result)
    {
        Assert.True(result.ExitCode == 2, result.ToString());
        string line = Assert.Single(result.ErrorLines);
        Assert.StartsWith("moe: ", line);
        return line;
    }

    /// <summary>
    /// The options of a <c>moe train</c> small enough to run in a test (T 32, D 8, H 8, E 4, a shared expert of 4),
    /// logging only the last step.
    /// </summary>
    public static readonly string[] SmallTrain =
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
        "100",
    ];

    /// <summary>A fresh empty directory under the temp folder.</summary>
    public static string TempDirectory()
    {
        string dir = Path.Combine(Path.GetTempPath(), "moe-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>The repository root (the folder holding <c>MoeSharp.slnx</c>) above the test binaries.</summary>
    public static string RepositoryRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MoeSharp.slnx")))
                return dir.FullName;
        }
        throw new DirectoryNotFoundException($"no MoeSharp.slnx above {AppContext.BaseDirectory}");
    }
}
