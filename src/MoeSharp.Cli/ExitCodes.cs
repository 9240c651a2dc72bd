namespace MoeSharp.Cli;

/// <summary>
/// The <c>moe</c> tool's exit codes (listed in the README and in <c>moe --help</c>). Every failure prints one line on
/// stderr.
/// </summary>
internal static class ExitCodes
{
    /// <summary>Success: the command did what it was asked and every check passed.</summary>
    public const int Success = 0;

    /// <summary>A verification ran and did not match (run, verify-golden, soak).</summary>
    public const int Mismatch = 1;

    /// <summary>Usage or bad input: an option, a file, or sizes that do not fit; the line names it.</summary>
    public const int UsageError = 2;

    /// <summary>A runtime failure: a rank failed, a collective timed out, memory ran out.</summary>
    public const int RuntimeFailure = 3;

    /// <summary>Interrupted by SIGINT (Ctrl-C): 128 + 2, the shell's convention.</summary>
    public const int Interrupted = 130;

    /// <summary>Terminated by SIGTERM: 128 + 15.</summary>
    public const int Terminated = 143;

    /// <summary>The table printed under <c>moe --help</c>.</summary>
    public const string HelpText =
        "Exit codes: 0 success; 1 a verification ran and did not match; 2 bad options or input (one line naming it); "
        + "3 a runtime failure (a rank failed, a timeout, out of memory); 130/143 interrupted by SIGINT/SIGTERM.";
}
