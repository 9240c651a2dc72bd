using MoeSharp.Cli;
using MoeSharp.Cli.Output;

// The `moe` command line: see CliApp for the commands and the exit-code contract.
ConsoleSetup.Apply();
return CliApp.Run(args);
