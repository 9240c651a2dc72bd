using MoeSharp.Tensors;

namespace MoeSharp.Collectives;

/// <summary>
/// Collectives over device tensors (for example NCCL on GPU memory), offered by a process group whose
/// ranks keep their rows on an accelerator. A dispatcher whose backend is not the host exchanges rows
/// through this interface; counts and other small host values still go through <see cref="IProcessGroup"/>.
/// </summary>
public interface IDeviceCollectives
{
    /// <summary>
    /// All-to-all-v of device tensors, counts in elements: the first <c>sendCounts[0]</c> elements of
    /// <paramref name="send"/> go to rank 0, and so on; <paramref name="receive"/> gets the chunks from rank
    /// 0, 1, … back to back from its first element, and its elements after them are left as they were. Rows
    /// (float32, bfloat16) and int32 counts. Ordered with the rank's device work: a group may return once the exchange is
    /// queued on the rank's stream (NCCL does), so work queued after it sees the received elements and a host read of
    /// them (<c>ToHost</c>) waits for them; a group that stages through the host returns when it is complete.
    /// </summary>
    void AllToAllV(Tensor send, ReadOnlySpan<int> sendCounts, Tensor receive, ReadOnlySpan<int> receiveCounts);

    /// <summary>
    /// Starts <see cref="AllToAllV"/> and returns at once (the exchange runs on its own stream, beside work queued
    /// meanwhile); the request's <c>Wait</c> orders the rank's later device work after it, blocking the host or not.
    /// </summary>
    CollectiveRequest AllToAllVAsync(Tensor send, int[] sendCounts, Tensor receive, int[] receiveCounts);

    /// <summary>Element-wise sum over the ranks, in place, in rank order (bitwise the same on every rank); ordered like <see cref="AllToAllV"/>.</summary>
    void AllReduceSum(Tensor values);
}
