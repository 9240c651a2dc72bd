using System.Text;
using MoeSharp.Checkpoints;
using MoeSharp.Cli;
using MoeSharp.Tensors;
using MoeSharp.Verification;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Fuzz;

/// <summary>
/// What the fuzzers feed: each target takes arbitrary bytes and returns normally when the code under test answered with
/// one of its documented errors; anything else escapes as a crash (AFL++ records the input). The unit tests run the
/// seed corpora and every recorded crash through the same targets.
/// </summary>
public static class FuzzTargets
{
    /// <summary>
    /// The targets by name: <c>safetensors</c>, <c>golden</c>, <c>cli</c>, <c>index</c> (a checkpoint's
    /// <c>model.safetensors.index.json</c>) and <c>hfconfig</c> (a checkpoint's <c>config.json</c>).
    /// </summary>
    public static IReadOnlyDictionary<string, Action<byte[]>> ByName { get; } =
        new Dictionary<string, Action<byte[]>>
        {
            ["safetensors"] = Safetensors,
            ["golden"] = GoldenMetadata,
            ["cli"] = CliOptions,
            ["index"] = CheckpointIndex,
            ["hfconfig"] = HfConfig,
        };

    // One checkpoint directory per process: a real shard holding tensors "a" and "b"; each input replaces its index.
    private static readonly Lazy<string> IndexDirectory = new(() =>
    {
        string dir = Directory.CreateTempSubdirectory("moesharp-fuzz-index-").FullName;
        SafetensorsFile.Write(
            Path.Combine(dir, "model-00001-of-00001.safetensors"),
            [
                new KeyValuePair<string, Tensor>("a", Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 2, 2)),
                new KeyValuePair<string, Tensor>("b", Tensor.FromArray(new float[] { 5, 6 }, 2)),
            ]
        );
        return dir;
    });

    /// <summary>
    /// A checkpoint's shard index: the directory opens and its tensors resolve, or it is refused with an
    /// <see cref="InvalidDataException"/> (a tensor the index does not know is a <see cref="KeyNotFoundException"/>).
    /// </summary>
    public static void CheckpointIndex(byte[] bytes)
    {
        string dir = IndexDirectory.Value;
        File.WriteAllBytes(Path.Combine(dir, SafetensorsCheckpoint.IndexFileName), bytes);
        try
        {
            using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(dir);
            Span<float> first = stackalloc float[1];
            foreach (string name in new[] { "a", "b", "c" })
            {
                if (checkpoint.TryGetTensor(name, out _))
                    checkpoint.ReadFloat32(name, 0, first);
            }
        }
        catch (InvalidDataException) { }
    }

    /// <summary>
    /// A checkpoint's <c>config.json</c>: a family's MoE configuration, or an <see cref="InvalidDataException"/>.
    /// </summary>
    public static void HfConfig(byte[] bytes)
    {
        try
        {
            _ = HfMoeConfig.Parse(Encoding.UTF8.GetString(bytes), "fuzz/config.json");
        }
        catch (InvalidDataException) { }
    }

    /// <summary>The safetensors reader: a file is read or refused with an <see cref="InvalidDataException"/>.</summary>
    public static void Safetensors(byte[] bytes)
    {
        try
        {
            SafetensorsContent file = SafetensorsFile.ReadFrom(bytes, "fuzz.safetensors");
            foreach (string name in file.Names)
                _ = file.Get(name).ElementCount;
        }
        catch (InvalidDataException) { }
    }

    /// <summary>
    /// A dispatch golden file's metadata: read into a problem, or refused with an <see cref="InvalidDataException"/>.
    /// </summary>
    public static void GoldenMetadata(byte[] bytes)
    {
        SafetensorsContent file;
        try
        {
            file = SafetensorsFile.ReadFrom(bytes, "fuzz.safetensors");
        }
        catch (InvalidDataException)
        {
            return;
        }
        try
        {
            _ = GoldenDispatchReplay.ReadCase(file);
        }
        catch (InvalidDataException) { }
    }

    /// <summary>
    /// The command line, parsed and validated but never executed: the input's lines are the arguments. It must exit 2
    /// with one line on stderr free of framework type names and stack traces, or reach the command.
    /// </summary>
    public static void CliOptions(byte[] bytes)
    {
        string[] args = Encoding.UTF8.GetString(bytes).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var stop = new StopBeforeExecute();
        var stderr = new StringWriter();
        TextWriter oldOut = Console.Out,
            oldError = Console.Error;
        IAnsiConsole oldAnsi = AnsiConsole.Console;
        AnsiConsole.Console = AnsiConsole.Create(
            new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null), Ansi = AnsiSupport.No }
        );
        Console.SetOut(TextWriter.Null);
        Console.SetError(stderr);
        int code;
        try
        {
            code = CliApp.Run(args, stop);
        }
        finally
        {
            AnsiConsole.Console = oldAnsi;
            Console.SetOut(oldOut);
            Console.SetError(oldError);
        }
        string error = stderr.ToString();
        if (stop.Reached || code == ExitCodes.Success)
            return; // valid options (or --help): the command would run
        if (code != ExitCodes.UsageError)
            throw new InvalidOperationException($"exit {code} before the command ran: {error}");
        string[] lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (
            lines.Length != 1
            || !lines[0].StartsWith("moe: ", StringComparison.Ordinal)
            || error.Contains("Nullable`", StringComparison.Ordinal)
            || error.Contains("TimeSpan", StringComparison.Ordinal)
            || error.Contains("   at ", StringComparison.Ordinal)
        )
        {
            throw new InvalidOperationException($"usage error not one clean line: {error}");
        }
    }

    /// <summary>Validates the bound settings, then stops before the command runs.</summary>
    private sealed class StopBeforeExecute : ICommandInterceptor
    {
        public bool Reached { get; private set; }

        public void Intercept(CommandContext context, CommandSettings settings)
        {
            ValidationResult result = settings.Validate();
            if (!result.Successful)
                return; // the app reports it as a usage error
            Reached = true;
            throw new OperationCanceledException("stopped before the command ran");
        }
    }
}
