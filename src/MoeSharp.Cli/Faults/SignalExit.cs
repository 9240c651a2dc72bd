using System.Runtime.InteropServices;

namespace MoeSharp.Cli.Faults;

/// <summary>
/// SIGINT (Ctrl-C) and SIGTERM end the command at once: one line on stderr, then the process exits with 130 or 143.
/// </summary>
/// <remarks>
/// Ranks are threads blocked in collectives or kernels (or MPI processes); there is nothing to save halfway, so the
/// process ends instead of waiting for ranks to notice a cancellation: every in-process rank stops with it, the
/// driver frees its device memory, and under <c>mpiexec</c> (which forwards the signal to every process, and ends the
/// job when one exits non-zero) the whole job ends. Without this, the command-line framework swallows SIGINT and the
/// command runs on to completion with exit code 0.
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
        foreach (PosixSignalRegistration registration in _registrations) registration.Dispose();
    }

    private static void Handle(PosixSignalContext context)
    {
        context.Cancel = true;
        bool interrupt = context.Signal == PosixSignal.SIGINT;
        int code = interrupt ? ExitCodes.Interrupted : ExitCodes.Terminated;
        if (Interlocked.CompareExchange(ref _pending, code, 0) != 0) return;
        try
        {
            Console.Out.Flush();
            Console.Error.WriteLine($"moe: interrupted by {(interrupt ? "SIGINT" : "SIGTERM")}; stopping every rank (exit code {code})");
            Console.Error.Flush();
        }
        finally
        {
            Environment.Exit(code);
        }
    }
}
