using System.Diagnostics;
using System.Runtime.InteropServices;

namespace MoeSharp.Mpi.Tests;

/// <summary>An <c>mpiexec</c> on this machine and the MPI library it belongs to.</summary>
/// <param name="Command">The launcher: <c>mpiexec</c>, or <c>mpiexec.mpich</c> for MPICH's Hydra side by side with Open
/// MPI.</param>
public sealed record MpiLauncher(string Command)
{
    /// <summary>Open MPI's launcher (the default <c>mpiexec</c> where both are installed).</summary>
    public static MpiLauncher Default { get; } =
        new(Environment.GetEnvironmentVariable("MOESHARP_MPIEXEC") ?? "mpiexec");

    /// <summary>MPICH's Hydra under its Debian name.</summary>
    public static MpiLauncher Mpich { get; } = new("mpiexec.mpich");

    /// <summary>Why this launcher cannot run, or null when it can.</summary>
    public string? SkipReason
    {
        get
        {
            string? path = Find(Command);
            if (path is null)
                return $"{Command} is not on PATH; install MPI with tests/mpi/install-mpi.sh (apt-get install openmpi-bin libopenmpi-dev)";
            string[] libraries = IsOpenMpi ? ["libmpi.so.40"] : ["libmpi.so.12", "libmpich.so.12"];
            foreach (string library in libraries)
            {
                if (NativeLibrary.TryLoad(library, out nint handle))
                {
                    NativeLibrary.Free(handle);
                    return null;
                }
            }
            return $"{Command} found at {path} but none of {string.Join(", ", libraries)} loads; install libopenmpi-dev or libmpich-dev";
        }
    }

    /// <summary>True for Open MPI's launcher, which needs <c>--allow-run-as-root --oversubscribe</c> here.</summary>
    public bool IsOpenMpi => _isOpenMpi.Value;

    private readonly Lazy<bool> _isOpenMpi = new(() =>
        Version(Command).Contains("Open", StringComparison.OrdinalIgnoreCase)
    );

    /// <summary>
    /// Runs <c>mpiexec -n <paramref name="ranks"/> dotnet driver.dll <paramref name="scenario"/></c>.
    /// </summary>
    public MpiRun Run(int ranks, string scenario, TimeSpan limit) => RunDotnet(ranks, [DriverPath, scenario], limit);

    /// <summary>
    /// Runs <c>mpiexec -n <paramref name="ranks"/> dotnet moe.dll <paramref name="moeArgs"/></c> (the built CLI).
    /// </summary>
    public MpiRun RunMoe(int ranks, IEnumerable<string> moeArgs, TimeSpan limit) =>
        RunDotnet(ranks, [MoePath, .. moeArgs], limit);

    /// <summary>Runs <c>mpiexec -n <paramref name="ranks"/> dotnet <paramref name="dotnetArgs"/></c>.</summary>
    public MpiRun RunDotnet(int ranks, IReadOnlyList<string> dotnetArgs, TimeSpan limit)
    {
        var start = new ProcessStartInfo(Command)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-n");
        start.ArgumentList.Add(ranks.ToString());
        if (IsOpenMpi)
        {
            // Containers and CI run as root, and CI machines may have fewer cores than ranks.
            start.ArgumentList.Add("--allow-run-as-root");
            start.ArgumentList.Add("--oversubscribe");
        }
        start.ArgumentList.Add("dotnet");
        foreach (string arg in dotnetArgs)
            start.ArgumentList.Add(arg);
        // Keep the ranks from picking the other implementation when both are installed.
        start.Environment.Remove("MOESHARP_MPI_LIBRARY");
        return Wait(start, limit);
    }

    /// <summary>Runs <c>dotnet moe.dll <paramref name="moeArgs"/></c> as a plain process (in-process ranks).</summary>
    public static MpiRun RunMoeInProcess(IEnumerable<string> moeArgs, TimeSpan limit)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(MoePath);
        foreach (string arg in moeArgs)
            start.ArgumentList.Add(arg);
        return Wait(start, limit);
    }

    private static MpiRun Wait(ProcessStartInfo start, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        using Process process =
            Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName}");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return new MpiRun(-1, stdout.Result, stderr.Result + $"\n[killed after {limit}]", clock.Elapsed);
        }
        process.WaitForExit();
        return new MpiRun(process.ExitCode, stdout.Result, stderr.Result, clock.Elapsed);
    }

    /// <summary>
    /// The driver's dll: tests/MoeSharp.Mpi.Driver/bin/&lt;configuration&gt;/&lt;tfm&gt;/, found from this test
    /// assembly's tests/MoeSharp.Mpi.Tests/bin/&lt;configuration&gt;/&lt;tfm&gt;/.
    /// </summary>
    public static string DriverPath
    {
        get
        {
            var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            string tfm = here.Name;
            string configuration = here.Parent!.Name;
            string testsDir = here.Parent!.Parent!.Parent!.Parent!.FullName;
            string path = Path.Combine(
                testsDir,
                "MoeSharp.Mpi.Driver",
                "bin",
                configuration,
                tfm,
                "MoeSharp.Mpi.Driver.dll"
            );
            return File.Exists(path)
                ? path
                : throw new FileNotFoundException($"MPI test driver not built at {path}", path);
        }
    }

    /// <summary>
    /// The <c>moe</c> CLI's dll: src/MoeSharp.Cli/bin/&lt;configuration&gt;/&lt;tfm&gt;/moe.dll, found from this
    /// test assembly's tests/MoeSharp.Mpi.Tests/bin/&lt;configuration&gt;/&lt;tfm&gt;/ (the test project references
    /// the CLI project so that it is built).
    /// </summary>
    public static string MoePath
    {
        get
        {
            var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            string tfm = here.Name;
            string configuration = here.Parent!.Name;
            string repoDir = here.Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
            string path = Path.Combine(repoDir, "src", "MoeSharp.Cli", "bin", configuration, tfm, "moe.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException($"moe CLI not built at {path}", path);
        }
    }

    private static string? Find(string command)
    {
        if (command.Contains('/'))
            return File.Exists(command) ? command : null;
        foreach (
            string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(
                Path.PathSeparator,
                StringSplitOptions.RemoveEmptyEntries
            )
        )
        {
            string candidate = Path.Combine(dir, command);
            if (File.Exists(candidate))
                return candidate;
        }
        return null;
    }

    private static string Version(string command)
    {
        try
        {
            var start = new ProcessStartInfo(command, "--version")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using Process p = Process.Start(start)!;
            string text = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit(10_000);
            return text;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "";
        }
    }
}

/// <summary>What an <c>mpiexec</c> run produced.</summary>
public sealed record MpiRun(int ExitCode, string Output, string Error, TimeSpan Elapsed)
{
    /// <inheritdoc/>
    public override string ToString() =>
        $"exit {ExitCode} after {Elapsed.TotalSeconds:F1} s\n--- stdout\n{Output}\n--- stderr\n{Error}";
}
