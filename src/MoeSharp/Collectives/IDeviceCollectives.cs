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
    /// 0, 1, … back to back. Returns when this rank's part is complete.
    /// </summary>
    void AllToAllV(Tensor send, ReadOnlySpan<int> sendCounts, Tensor receive, ReadOnlySpan<int> receiveCounts);

    /// <summary>Starts <see cref="AllToAllV"/> and returns at once (the exchange runs on its own stream).</summary>
    CollectiveRequest AllToAllVAsync(Tensor send, int[] sendCounts, Tensor receive, int[] receiveCounts);

    /// <summary>
    /// All-to-all-v with displacements (elements), started after the work already queued on the device, returning at
    /// once: rank q gets <c>sendCounts[q]</c> elements of <paramref name="send"/> from <c>sendDisplacements[q]</c>, and
    /// rank p's elements land in <paramref name="receive"/> at <c>receiveDisplacements[p]</c>. Several of these in flight
    /// move one exchange in chunks, each waited for on its own, so the device can permute a chunk while the next
    /// moves. Every rank must start the same sequence of calls.
    /// </summary>
    CollectiveRequest AllToAllVAsync(Tensor send, int[] sendCounts, int[] sendDisplacements, Tensor receive, int[] receiveCounts, int[] receiveDisplacements);

    /// <summary>Element-wise sum over the ranks, in place, in rank order (bitwise the same on every rank).</summary>
    void AllReduceSum(Tensor values);
}
