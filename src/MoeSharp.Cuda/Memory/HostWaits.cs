using ILGPU.Runtime;

namespace MoeSharp.Cuda.Memory;

/// <summary>
/// The one place a device backend blocks the host on its stream (copies to the host, uploads, <c>Synchronize</c>).
/// Exchanges are only queued on the stream, so a blocking wait may be the first to meet an exchange that can never
/// finish because a peer failed; a rank whose stream carries collectives therefore installs its group's
/// <see cref="IStreamDrain"/> (<see cref="Guard"/>), which polls with the group's failure checks and timeout before the
/// blocking call, which then finds nothing left to wait for. Without a guard a wait is the stream's own synchronize.
/// </summary>
internal sealed class HostWaits
{
    private IStreamDrain? _drain;

    /// <summary>Installs <paramref name="drain"/> (null removes it); later waits go through it.</summary>
    public void Guard(IStreamDrain? drain) => Volatile.Write(ref _drain, drain);

    /// <summary>
    /// Call before a blocking copy between the host and the device: drains the stream through the guard, if any.
    /// </summary>
    /// <param name="operation">What waits, for the guard's error message.</param>
    public void BeforeBlockingCall(string operation) => Volatile.Read(ref _drain)?.Drain(operation);

    /// <summary>
    /// Waits for everything queued on <paramref name="stream"/>, through the guard first when there is one.
    /// </summary>
    public void Synchronize(AcceleratorStream stream, string operation)
    {
        ArgumentNullException.ThrowIfNull(stream);
        BeforeBlockingCall(operation);
        stream.Synchronize();
    }
}
