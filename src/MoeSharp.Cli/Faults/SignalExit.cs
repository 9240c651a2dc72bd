using System.Runtime.InteropServices;

namespace MoeSharp.Cli.Faults;

/// <summary>
/// SIGINT (Ctrl-C) and SIGTERM end the command at once: one line on stderr, then the process exits with 130 or 143.
/// </summary>
/// <remarks>
/// Ranks are threads blocked in collectives or kernels (or MPI processes); there is nothing to save halfway, so the
/// process ends (without the exit handlers of native libraries, see <see cref="ExitNow"/>) instead of waiting for ranks
/// to notice a cancellation: every in-process rank stops with it, the driver frees its device memory, and under
/// <c>mpiexec</c> (which forwards the signal to every process, and ends the job when one exits non-zero) the whole job
/// ends. Without this, the command-line framework swallows SIGINT and the command runs on to completion with exit code
/// 0.
/// </remarks>
internal sealed class SignalExit : IDisposable
{
    private static int _pending;
    private readonly PosixSignalRegistration[] _registrations;

    private SignalExit()
    {
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle),
        ];
    }

    /// <summary>The exit code of a signal being handled, or null.</summary>
    public static int? Pending => Volatile.Read(ref _pending) is int code and > 0 ? code : null;

    /// <summary>Installs the handlers for the life of the returned object.</summary>
    public static SignalExit Register() => new();

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (PosixSignalRegistration registration in _registrations)
            registration.Dispose();
    }

    private static void Handle(PosixSignalContext context)
    {
        context.Cancel = true;
        bool interrupt = context.Signal == PosixSignal.SIGINT;
        int code = interrupt ? ExitCodes.Interrupted : ExitCodes.Terminated;
        if (Interlocked.CompareExchange(ref _pending, code, 0) != 0)
            return;
        try
        {
            Console.Out.Flush();
            Console.Error.WriteLine(
                $"moe: interrupted by {(interrupt ? "SIGINT" : "SIGTERM")}; stopping every rank (exit code {code})"
            );
            Console.Error.Flush();
        }
        finally
        {
            ExitNow(code);
        }
    }

    // Environment.Exit runs the runtime's and native libraries' exit handlers while rank threads are still inside
    // CUDA, NCCL or MPI calls; the CUDA driver's teardown then crashed the process (SIGSEGV, exit 139 instead of 130,
    // seen on an H200). _exit ends the process without them: the kernel and the driver free its memory and device
    // contexts, and an MPI launcher sees the process end as it would after a signal.
    private static void ExitNow(int code)
    {
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
            ImmediateExit(code);
        Environment.Exit(code);
    }

    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void ImmediateExit(int status);
}
