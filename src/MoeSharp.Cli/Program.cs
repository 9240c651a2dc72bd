using MoeSharp.Cli;

// The `moe` command line: see CliApp for the commands and the exit-code contract.
return CliApp.Run(args);
