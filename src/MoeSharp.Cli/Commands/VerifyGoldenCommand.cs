using System.Globalization;
using MoeSharp.Collectives;
using MoeSharp.Tensors;
using MoeSharp.Verification;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe verify-golden [FILE...]</c>: replays each golden file (default: the files bundled with the tool; dispatch
/// kind bitwise; moe_layer kind within the golden tolerance, then on multi-rank layouts bitwise) and prints PASS, FAIL
/// (with the first mismatch: tensor, index, expected, actual), SKIP or N/A per file. Exit code 0 only when no file
/// failed; 1 when a replay did not match; 2 when a file could not be read or is inconsistent (its line goes to stderr);
/// 3 when a rank failed at run time. A directory stands for the .safetensors files in it.
/// </summary>
internal sealed class VerifyGoldenCommand : Command<VerifyGoldenSettings>
{
    /// <summary>One file's verdict.</summary>
    private enum Verdict
    {
        Pass,
        Fail,
        Unreadable,
        Skipped,
        NotApplicable,
        Error,
    }

    public override int Execute(
        CommandContext context,
        VerifyGoldenSettings settings,
        CancellationToken cancellationToken
    )
    {
        TimeSpan? timeout = settings.TimeoutSeconds is double s ? TimeSpan.FromSeconds(s) : null;
        CommKind comm = CommKinds.Parse(settings.Comm);
        ComputeOptions compute = ComputeOptions.Parse(settings.Device, settings.Gpus);
        IReadOnlyList<string> files =
            settings.Files.Length > 0 ? Faults.GoldenFiles.Expand(settings.Files) : BundledGolden.Files();
        List<(Verdict Verdict, string Line)>? lines =
            comm == CommKind.InProcess
                ? files.Select(path => VerifyInProcess(path, timeout, compute)).ToList()
                : RankLauncher.Run(
                    comm,
                    0,
                    world => files.Select(path => VerifyOnJob(world, path, compute)).ToList(),
                    timeout
                );
        if (lines is null)
            return 0; // not rank 0 of an MPI job: rank 0 reports

        foreach (var (verdict, line) in lines)
        {
            if (verdict is Verdict.Unreadable or Verdict.Error)
            {
                // Bad input and run-time failures are not verdicts on the replay: stderr, as the README says.
                AnsiConsole.Console.Profile.Out.Writer.Flush();
                Console.Error.WriteLine($"moe: {line}");
                continue;
            }
            string tag = verdict switch
            {
                Verdict.Pass => "[green]PASS[/]",
                Verdict.Skipped => "[yellow]SKIP[/]",
                Verdict.NotApplicable => "[grey]N/A [/]",
                _ => "[red]FAIL[/]",
            };
            AnsiConsole.MarkupLine($"{tag} {Markup.Escape(line)}");
        }
        int Count(params Verdict[] kinds) => lines.Count(l => kinds.Contains(l.Verdict));
        // Files that could not be replayed are counted only when there are some (their lines went to stderr).
        string unreadable = Count(Verdict.Unreadable) > 0 ? $", {Count(Verdict.Unreadable)} unreadable" : "";
        string errors = Count(Verdict.Error) > 0 ? $", {Count(Verdict.Error)} errors" : "";
        AnsiConsole.MarkupLine(
            $"{Count(Verdict.Pass)} passed, {Count(Verdict.Fail)} failed, {Count(Verdict.Skipped)} skipped, "
                + $"{Count(Verdict.NotApplicable)} not applicable{unreadable}{errors}"
        );
        return Count(Verdict.Error) > 0 ? ExitCodes.RuntimeFailure
            : Count(Verdict.Unreadable) > 0 ? ExitCodes.UsageError
            : Count(Verdict.Fail) > 0 ? ExitCodes.Mismatch
            : ExitCodes.Success;
    }

    private static (Verdict, string) VerifyInProcess(string path, TimeSpan? timeout, ComputeOptions compute)
    {
        var (file, error) = Open(path);
        if (file is null)
            return Unreadable(path, error!);
        if (GoldenLayerReplay.Applies(file))
        {
            (Verdict verdict, string line) = VerifyLayer(path, file, timeout);
            return verdict != Verdict.Pass || !compute.OnDevice
                ? (verdict, line)
                : VerifyLayerOnDevice(path, file, timeout, compute, line);
        }
        if (!GoldenDispatchReplay.Applies(file))
            return NotApplicable(path, file);
        string? mismatch;
        try
        {
            mismatch = GoldenDispatchReplay.Replay(file, timeout, compute);
        }
        catch (Exception ex) when (ex is RankFailedException || IsBadInput(ex))
        {
            return CannotReplay(Path.GetFileName(path), ex);
        }
        string where = compute.OnDevice ? $" (on {compute.DeviceName})" : "";
        return mismatch is null
            ? (Verdict.Pass, Path.GetFileName(path) + where)
            : (Verdict.Fail, $"{Path.GetFileName(path)}{where}: {mismatch}");
    }

    /// <summary>
    /// One file on an MPI job: the file's world runs on the job's first ranks (a sub-group), the rest wait;
    /// every rank reads the same file and so reaches the same verdict on its own.
    /// </summary>
    private static (Verdict, string) VerifyOnJob(IProcessGroup world, string path, ComputeOptions compute)
    {
        var (file, error) = Open(path);
        if (file is null)
            return Unreadable(path, error!);
        if (GoldenLayerReplay.Applies(file))
        {
            // A layer file names no world: rank 0 replays it on in-process ranks and tells the others.
            (Verdict verdict, string line) =
                world.Rank == 0 ? VerifyLayer(path, file, world.Timeout) : (Verdict.Pass, "");
            string? failure = RankMessages.FirstInRankOrder(world, verdict == Verdict.Pass ? null : line);
            return failure is null
                ? (Verdict.Pass, line + " (replayed in-process on rank 0)")
                : (Verdict.Fail, failure);
        }
        if (!GoldenDispatchReplay.Applies(file))
            return NotApplicable(path, file);
        DispatchCase seed;
        try
        {
            seed = GoldenDispatchReplay.ReadCase(file);
        }
        catch (Exception ex) when (ex is InvalidDataException or KeyNotFoundException)
        {
            return CannotReplay(Path.GetFileName(path), ex);
        }
        if (seed.World > world.Size)
        {
            return (
                Verdict.Skipped,
                $"{Path.GetFileName(path)}: needs {seed.World} ranks, the MPI job has {world.Size}"
            );
        }
        bool participates = world.Rank < seed.World;
        using IProcessGroup group = world.Split(participates ? 0 : 1, world.Rank);
        string? mismatch = participates ? GoldenDispatchReplay.CheckRank(group, file, seed, compute) : null;
        string? first = RankMessages.FirstInRankOrder(world, mismatch);
        string where = seed.World < world.Size ? $" (on ranks 0..{seed.World - 1} of {world.Size})" : "";
        return first is null
            ? (Verdict.Pass, Path.GetFileName(path) + where)
            : (Verdict.Fail, $"{Path.GetFileName(path)}{where}: {first}");
    }

    /// <summary>A moe_layer file: one rank within tolerance, then the multi-rank layouts bitwise.</summary>
    private static (Verdict, string) VerifyLayer(string path, SafetensorsContent file, TimeSpan? timeout)
    {
        string name = Path.GetFileName(path);
        GoldenLayerReplay.Report report;
        try
        {
            report = GoldenLayerReplay.Replay(file, timeout);
        }
        catch (Exception ex) when (ex is RankFailedException || IsBadInput(ex))
        {
            return CannotReplay(name, ex);
        }
        string detail = string.Create(
            CultureInfo.InvariantCulture,
            $"max relative error {report.MaxRelativeError:E2} ({report.WorstTensor}); {report.Layouts} multi-rank layouts bitwise (out, grad.x), weight grads {(report.WeightGradsBitwise ? "bitwise" : "within 1e-5")}"
        );
        return report.Mismatch is null
            ? (Verdict.Pass, $"{name}: {detail}")
            : (Verdict.Fail, $"{name}: {report.Mismatch}; {detail}");
    }

    /// <summary>
    /// After the host replay passed: the layer on the device (one rank, then an expert-parallel world over the GPUs, or
    /// two ranks on ILGPU's CPU accelerator), every tensor within tolerance of the file.
    /// </summary>
    private static (Verdict, string) VerifyLayerOnDevice(
        string path,
        SafetensorsContent file,
        TimeSpan? timeout,
        ComputeOptions compute,
        string hostLine
    )
    {
        string name = Path.GetFileName(path);
        int ranks =
            compute.Device == DeviceKind.Cuda
                ? (compute.Gpus > 0 ? compute.Gpus : ComputeOptions.CudaDeviceCount())
                : 2;
        GoldenLayerReplay.DeviceReport report;
        try
        {
            report = GoldenLayerReplay.ReplayOnDevice(file, compute, ranks, timeout);
        }
        catch (Exception ex) when (ex is RankFailedException || IsBadInput(ex))
        {
            return CannotReplay($"{name} (layer on {compute.DeviceName})", ex);
        }
        string detail = string.Create(
            CultureInfo.InvariantCulture,
            $"layer on {compute.DeviceName} ({string.Join("; ", report.Layouts)}): max relative error {report.MaxRelativeError:E2} ({report.WorstTensor})"
        );
        return report.Mismatch is null
            ? (Verdict.Pass, $"{hostLine}; {detail}")
            : (Verdict.Fail, $"{name}: {report.Mismatch}; {detail}");
    }

    private static (SafetensorsContent? File, string? Error) Open(string path)
    {
        try
        {
            return (SafetensorsFile.Read(path), null);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return (null, ex.Message);
        }
    }

    /// <summary>
    /// A replay that could not run: the file's content is inconsistent (bad input, exit 2), or a rank failed for
    /// another reason (a run-time failure, exit 3). Neither is a mismatch.
    /// </summary>
    private static (Verdict, string) CannotReplay(string name, Exception ex)
    {
        Exception cause = ex is RankFailedException { InnerException: { } inner } ? inner : ex;
        bool badInput = IsBadInput(cause);
        // Exception messages can span lines (ArgumentOutOfRangeException adds "Actual value was ..."); the contract is
        // one.
        return (
            badInput ? Verdict.Unreadable : Verdict.Error,
            $"{name}: cannot replay: {ex.Message.ReplaceLineEndings(" ")}"
        );
    }

    /// <summary>
    /// What a replay throws for a file whose content is malformed or inconsistent (a metadata entry that does not
    /// parse included), as opposed to a run-time failure.
    /// </summary>
    private static bool IsBadInput(Exception ex) =>
        ex is InvalidDataException or KeyNotFoundException or ArgumentException or FormatException;

    private static (Verdict, string) Unreadable(string path, string error) =>
        (Verdict.Unreadable, $"{Path.GetFileName(path)}: cannot read: {error}");

    private static (Verdict, string) NotApplicable(string path, SafetensorsContent file)
    {
        string kind = file.Metadata.TryGetValue("kind", out string? k) ? k : "?";
        return (Verdict.NotApplicable, $"{Path.GetFileName(path)}: kind '{kind}' is not a known golden kind");
    }
}
