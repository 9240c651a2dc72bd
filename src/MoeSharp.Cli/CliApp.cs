using System.Reflection;
using MoeSharp.Cli.Commands;
using MoeSharp.Cli.Config;
using MoeSharp.Collectives;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli;

/// <summary>
/// Builds the <c>moe</c> command app and maps failures to the exit codes of <see cref="ExitCodes"/>: 0 success, 1 a
/// verification did not match, 2 bad options or inputs, 3 a runtime failure, 130/143 interrupted; each failure is one
/// line on stderr without a stack trace.
/// </summary>
internal static class CliApp
{
    /// <summary>Exit code for bad options or inputs.</summary>
    public const int UsageError = ExitCodes.UsageError;

    /// <summary>Runs the command line and returns the process exit code.</summary>
    /// <param name="args">The command line.</param>
    /// <param name="interceptor">Sees each command's bound settings before validation (the fuzz harness stops
    /// there).</param>
    public static int Run(string[] args, ICommandInterceptor? interceptor = null)
    {
        // Without a terminal Spectre assumes 80 columns and wraps the tables; logs and CI read better wide.
        // mpiexec hands each rank a pseudo-terminal that is really a pipe to the launcher: same treatment,
        // and nothing that redraws in place (progress bars), since the launcher interleaves ranks' lines.
        bool underMpiexec = LaunchedByMpiexec();
        if (Console.IsOutputRedirected || underMpiexec)
            AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 160);
        if (underMpiexec)
            AnsiConsole.Profile.Capabilities.Interactive = false;
        using var signals = Faults.SignalExit.Register();
        var app = new CommandApp();
        // Each command's settings type, by name: which of its options take a value (OptionValues).
        var settingsOf = new Dictionary<string, Type>(StringComparer.Ordinal);
        app.Configure(config =>
        {
            config.SetApplicationName("moe");
            config.SetApplicationVersion(Version);
            // Help and --version through the console the process set up (and tests capture).
            config.ConfigureConsole(AnsiConsole.Console);
            config.SetInterceptor(new Faults.PlaceholderValues(interceptor));
            config.PropagateExceptions();
            config.UseStrictParsing();
            Add<RunCommand>(
                config,
                "run",
                "Run dispatch → experts → combine on in-process or MPI ranks (host, CUDA or ILGPU CPU kernels) with random inputs and verify bitwise against a single-rank run."
            );
            Add<VerifyGoldenCommand>(
                config,
                "verify-golden",
                "Replay golden .safetensors files: dispatch files through the dispatcher, every tensor bitwise; moe_layer files through the layer, within the golden tolerance, then the multi-rank layouts against one rank (and, with --device, the layer on the device within tolerance)."
            );
            Add<TrainCommand>(
                config,
                "train",
                "Train a small MoE regression model on in-process or MPI ranks, on the host or the GPUs (AdamW, aux-loss-free balancing); on the host, losses are bitwise the same on every layout."
            );
            Add<SoakCommand>(
                config,
                "soak",
                "Chaos soak: random dispatcher configurations, some with one injected fault at a random collective of a random rank; every fault-free run bitwise equal to one rank, every faulted run ending within the timeout + 2 s naming the culprit."
            );
            Add<BenchCommand>(
                config,
                "bench",
                "Time dispatch and combine next to the machine's memory-copy bandwidth (host, or GPUs with --device cuda); --gemm times cuBLAS grouped GEMM."
            );
            Add<LayerCommand>(
                config,
                "layer",
                "Run the MoE block of one decoder layer of a Hugging Face checkpoint (Qwen2-MoE, Qwen3-MoE, Mixtral, DeepSeek-V3) forward, each rank reading only its own experts; print the routing load and the time."
            );
            Add<CpuBenchCommand>(
                config,
                "bench-cpu",
                "Time the host GEMM against the cores' FMA peak and the in-process all-to-all-v against a copy, on --threads threads."
            );
        });
        if (Faults.MalformedOptions.Find(args) is string malformed)
        {
            Console.Error.WriteLine($"moe: {malformed}");
            return UsageError;
        }
        var origins = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            string[] joined =
                args is [string name, ..] && settingsOf.TryGetValue(name, out Type? settings)
                    ? Faults.OptionValues.Join(args, settings)
                    : args;
            int code = app.Run(JobConfig.Expand(joined, origins));
            if (args.Length == 0 || args is ["--help" or "-h"])
                Console.WriteLine(ExitCodes.HelpText);
            return code;
        }
        catch (ReportedByRankZeroException)
        {
            // A usage error of an MPI job that rank 0 has already printed (once, for the whole job).
            return UsageError;
        }
        catch (Exception ex) when (IsUsageError(ex))
        {
            AnsiConsole.Console.Profile.Out.Writer.Flush();
            string message = Faults.OptionErrors.Rewrite(Unwrap(ex).Message, args) ?? Describe(ex);
            Console.Error.WriteLine($"moe: {JobConfig.WithOrigin(message, origins)}");
            return UsageError;
        }
        catch (Exception ex) when (Faults.SignalExit.Pending is int code)
        {
            // A rank failed because the run was cancelled: the signal's line is already printed.
            _ = ex;
            return code;
        }
        catch (Exception ex)
        {
            AnsiConsole.Console.Profile.Out.Writer.Flush();
            Console.Error.WriteLine($"moe: error: {Describe(ex)}");
            return ExitCodes.RuntimeFailure;
        }

        // Registers a command and notes its settings type.
        void Add<TCommand>(IConfigurator config, string name, string description)
            where TCommand : class, ICommand
        {
            config.AddCommand<TCommand>(name).WithDescription(description);
            settingsOf[name] = typeof(TCommand)
                .GetInterfaces()
                .Single(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(ICommand<>))
                .GetGenericArguments()[0];
        }
    }

    /// <summary>True in a process started by an MPI launcher (<see cref="MpiJob"/>).</summary>
    private static bool LaunchedByMpiexec() => MpiJob.IsLaunched;

    /// <summary>
    /// <c>moe --version</c>: the assembly's informational version (set by the build's version source, with the
    /// commit the SDK appends after a <c>+</c>).
    /// </summary>
    public static string Version =>
        typeof(CliApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(CliApp).Assembly.GetName().Version?.ToString()
        ?? "unknown";

    private static bool IsUsageError(Exception ex) =>
        Unwrap(ex)
            is CommandAppException
                or ArgumentException
                or InvalidDataException
                or FileNotFoundException
                or DirectoryNotFoundException
                or FormatException;

    private static Exception Unwrap(Exception ex) =>
        ex is RankFailedException { InnerException: { } inner } ? inner : ex;

    private static string Describe(Exception ex)
    {
        Exception cause = Unwrap(ex);
        string where = ex is RankFailedException failed ? $"rank {failed.Rank}: " : "";
        // Spectre's messages can span lines; the contract is one line.
        return where + cause.Message.ReplaceLineEndings(" ");
    }
}
