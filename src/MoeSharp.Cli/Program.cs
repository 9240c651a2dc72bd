using MoeSharp.Cli;
using MoeSharp.Cli.Faults;
using MoeSharp.Cli.Output;

// The `moe` command line: see CliApp for the commands and the exit-code contract.
ConsoleSetup.Apply();

// Before any command, under MPI too (where a rank's exception would abort the job with a stack trace).
if (ThreadsVariable.Check() is string problem)
{
    if (ThreadsVariable.PrintsErrors())
        Console.Error.WriteLine($"moe: {problem}");
    return ExitCodes.UsageError;
}
return CliApp.Run(args);
