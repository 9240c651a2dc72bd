namespace MoeSharp.Cuda;

/// <summary>
/// Blocks until everything queued on a rank's compute stream has run, and throws instead of hanging when it never will
/// (the rank's communicator reported an error, the group was aborted, or the group's timeout passed). A device backend
/// calls it before each of its blocking host waits once its stream also carries collectives, whose completion depends
/// on other ranks (see <see cref="Memory.HostWaits"/>).
/// </summary>
public interface IStreamDrain
{
    /// <summary>Returns once the compute stream is idle.</summary>
    /// <param name="operation">What the caller waits for, for the error message (e.g. <c>copy to host</c>).</param>
    /// <exception cref="MoeSharp.Collectives.CollectiveException">The work cannot complete: an abort, a peer's failure
    /// or the timeout.</exception>
    void Drain(string operation);
}
