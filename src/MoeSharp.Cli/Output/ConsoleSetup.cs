using MoeSharp.Cli.Commands;
using Spectre.Console;

namespace MoeSharp.Cli.Output;

/// <summary>
/// The console the <c>moe</c> process writes through: colours and cursor movement only on a terminal, and never
/// under an MPI launcher, which forwards every rank's output through a pipe (its pseudo-terminal looks like a
/// terminal, but escape codes would end up in logs). <c>NO_COLOR</c> is honoured by Spectre itself.
/// </summary>
internal static class ConsoleSetup
{
    /// <summary>
    /// Replaces <see cref="AnsiConsole.Console"/> with one set up for this process's stdout. Call first, before
    /// anything touches <see cref="Console"/>.
    /// </summary>
    public static void Apply()
    {
        bool underMpi = MpiJob.IsLaunched;
        // On a terminal .NET's console starts by switching the keypad to application mode (terminfo keypad_xmit,
        // ESC[?1h ESC=), which the MPI launcher forwards from every rank into the job's output. A terminal type
        // without that capability, read when the console first initializes, keeps it out.
        if (underMpi)
            Environment.SetEnvironmentVariable("TERM", "dumb");
        AnsiConsole.Console = AnsiConsole.Create(Settings(Console.Out, !Console.IsOutputRedirected, underMpi));
    }

    /// <summary>The console settings for <paramref name="output"/>.</summary>
    /// <param name="output">Where the console writes.</param>
    /// <param name="outputIsTerminal">False when stdout is redirected to a file or a pipe.</param>
    /// <param name="underMpi">True when an MPI launcher started the process.</param>
    public static AnsiConsoleSettings Settings(TextWriter output, bool outputIsTerminal, bool underMpi)
    {
        bool rich = outputIsTerminal && !underMpi;
        return new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = rich ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = rich ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = rich ? InteractionSupport.Detect : InteractionSupport.No,
        };
    }
}
