using MoeSharp.Tensors;

namespace MoeSharp.Collectives;

/// <summary>
/// The collectives that move a rank's rows: tensors in, tensors out, whatever the row dtype and wherever the group's
/// ranks keep their rows. Every <see cref="IProcessGroup"/> offers them, so the dispatcher and the layer call one
/// method and the group, not the caller, knows how its memory moves: host groups (in-process threads, MPI) take host
/// tensors, NCCL takes tensors on its rank's GPU, and a host-staged group takes device tensors of any backend and
/// stages them through its host group. A tensor a group cannot reach throws an <see cref="ArgumentException"/> naming
/// the tensor's device and the group. Small host values (counts, losses, statistics) stay on the span collectives of
/// <see cref="IProcessGroup"/>.
/// </summary>
/// <remarks>
/// The same ordering and failure rules as <see cref="IProcessGroup"/>: every rank calls the same collectives in the
/// same order, and a collective completes on every rank or throws on every rank. The tensors belong to the collective
/// until it completes (for <see cref="AllToAllVAsync"/>, until its request does).
/// </remarks>
public interface ITensorCollectives
{
    /// <summary>
    /// All-to-all-v of tensor elements: the first <c>sendCounts[0]</c> elements of <paramref name="send"/> go to rank
    /// 0, the next <c>sendCounts[1]</c> to rank 1, and so on; <paramref name="receive"/> gets the chunks from rank 0,
    /// 1, … back to back from its first element, and its elements after them are left as they were. Counts are in
    /// elements (rows times row length). Rows of float32 or bfloat16 and int32 or int64 counts move as their bits
    /// (bfloat16 as its 16-bit pattern, never widened). A device group may return once the exchange is queued on the
    /// rank's stream (NCCL does): device work queued after it sees the received elements and a host read of them waits
    /// for them; a host group returns when it is complete.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// <paramref name="send"/> and <paramref name="receive"/> differ in dtype, a tensor is on memory the group cannot
    /// reach, or a count array does not have one non-negative entry per rank adding up to at most its tensor's
    /// elements.
    /// </exception>
    void AllToAllV(Tensor send, ReadOnlySpan<int> sendCounts, Tensor receive, ReadOnlySpan<int> receiveCounts);

    /// <summary>
    /// Starts <see cref="AllToAllV"/> and returns at once, so the rank computes while rows move; neither tensor may be
    /// touched until the request completes. A host request's <c>Wait</c> blocks until this rank's part is done; a
    /// device request's <c>Wait</c> orders the rank's later device work after the exchange without blocking the host.
    /// A group that cannot overlap (a host-staged one) runs the exchange before it returns and hands back a completed
    /// request, which is still a valid schedule because every rank makes the call at the same point.
    /// </summary>
    /// <exception cref="ArgumentException">As for <see cref="AllToAllV"/>.</exception>
    CollectiveRequest AllToAllVAsync(Tensor send, int[] sendCounts, Tensor receive, int[] receiveCounts);

    /// <summary>
    /// Element-wise sum over the ranks, in place, in rank order <c>((v0 + v1) + v2) + …</c>, so the result is bitwise
    /// the same on every rank and in every group. float32 sums in float32; bfloat16 is widened, summed in float32 and
    /// rounded once at the end. Ordered with device work like <see cref="AllToAllV"/>.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// The tensor is not float32 or bfloat16, or is on memory the group cannot reach.
    /// </exception>
    void AllReduceSum(Tensor values);
}
