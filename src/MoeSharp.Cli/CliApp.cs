using MoeSharp.Cli.Commands;
using MoeSharp.Collectives;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli;

/// <summary>
/// Builds the <c>moe</c> command app and maps failures to exit codes: 0 success, 1 a check failed (or an
/// unexpected error), 2 bad options or inputs, reported as one line without a stack trace.
/// </summary>
internal static class CliApp
{
    /// <summary>Exit code for bad options or inputs.</summary>
    public const int UsageError = 2;

    /// <summary>Runs the command line and returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        // Without a terminal Spectre assumes 80 columns and wraps the tables; logs and CI read better wide.
        // mpiexec hands each rank a pseudo-terminal that is really a pipe to the launcher: same treatment,
        // and nothing that redraws in place (progress bars), since the launcher interleaves ranks' lines.
        bool underMpiexec = LaunchedByMpiexec();
        if (Console.IsOutputRedirected || underMpiexec) AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 160);
        if (underMpiexec) AnsiConsole.Profile.Capabilities.Interactive = false;
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("moe");
            config.PropagateExceptions();
            config.UseStrictParsing();
            config.AddCommand<RunCommand>("run")
                .WithDescription("Run dispatch → experts → combine on in-process or MPI ranks (host, CUDA or ILGPU CPU kernels) with random inputs and verify bitwise against a single-rank run.");
            config.AddCommand<VerifyGoldenCommand>("verify-golden")
                .WithDescription("Replay golden .safetensors files: dispatch files through the dispatcher, every tensor bitwise; moe_layer files through the layer, within the golden tolerance, then the multi-rank layouts against one rank (and, with --device, the layer on the device within tolerance).");
            config.AddCommand<TrainCommand>("train")
                .WithDescription("Train a small MoE regression model on in-process or MPI ranks, on the host or the GPUs (AdamW, aux-loss-free balancing); on the host, losses are bitwise the same on every layout.");
            config.AddCommand<BenchCommand>("bench")
                .WithDescription("Time dispatch and combine next to the machine's memory-copy bandwidth (host, or GPUs with --device cuda); --gemm times cuBLAS grouped GEMM.");
            config.AddCommand<CpuBenchCommand>("bench-cpu")
                .WithDescription("Time the host GEMM against the cores' FMA peak and the in-process all-to-all-v against a copy, on --threads threads.");
        });
        try
        {
            return app.Run(args);
        }
        catch (ReportedByRankZeroException)
        {
            // A usage error of an MPI job that rank 0 has already printed (once, for the whole job).
            return UsageError;
        }
        catch (Exception ex) when (IsUsageError(ex))
        {
            AnsiConsole.Console.Profile.Out.Writer.Flush();
            Console.Error.WriteLine($"moe: {Describe(ex)}");
            return UsageError;
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"moe: error: {Describe(ex)}");
            return 1;
        }
    }

    /// <summary>True in a process started by Open MPI's or MPICH's launcher (they set these variables).</summary>
    private static bool LaunchedByMpiexec() =>
        Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null || Environment.GetEnvironmentVariable("PMI_SIZE") is not null;

    private static bool IsUsageError(Exception ex) => Unwrap(ex) is CommandAppException or ArgumentException
        or InvalidDataException or FileNotFoundException or DirectoryNotFoundException or FormatException;

    private static Exception Unwrap(Exception ex) => ex is RankFailedException { InnerException: { } inner } ? inner : ex;

    private static string Describe(Exception ex)
    {
        Exception cause = Unwrap(ex);
        string where = ex is RankFailedException failed ? $"rank {failed.Rank}: " : "";
        // Spectre's messages can span lines; the contract is one line.
        return where + cause.Message.ReplaceLineEndings(" ");
    }
}
