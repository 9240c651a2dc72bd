using MoeSharp.Tensors;

namespace MoeSharp.Collectives;

/// <summary>One contiguous run of elements of a local buffer that goes to, or comes from, one peer.</summary>
/// <param name="Peer">The peer's rank in the group.</param>
/// <param name="Offset">First element of the run in the local buffer.</param>
/// <param name="Count">Elements in the run (positive).</param>
public readonly record struct ExchangeBlock(int Peer, long Offset, long Count);

/// <summary>
/// An all-to-all of blocks between device tensors, offered by process groups whose transport matches messages per
/// peer in order (NCCL's grouped point-to-point calls): the i-th block this rank sends to peer q lands in the i-th
/// block q receives from this rank, so a sender can ship contiguous runs that the receiver scatters to where it wants
/// them, with no separate permutation pass. A dispatcher uses it, when the group offers it, to receive rows straight
/// into expert-major order and to send them back from it.
/// </summary>
public interface IDeviceBlockExchange
{
    /// <summary>
    /// Exchanges the blocks and returns when this rank's part is complete. Per peer, the send blocks and the peer's
    /// receive blocks must agree in number and counts, in order.
    /// </summary>
    /// <param name="send">Device tensor the send blocks index (elements).</param>
    /// <param name="sendBlocks">What goes where, in the order each peer receives it.</param>
    /// <param name="receive">Device tensor the receive blocks index, of the dtype of <paramref name="send"/>.</param>
    /// <param name="receiveBlocks">Where each arriving block lands, in the order each peer sends.</param>
    void ExchangeBlocks(Tensor send, IReadOnlyList<ExchangeBlock> sendBlocks, Tensor receive, IReadOnlyList<ExchangeBlock> receiveBlocks);

    /// <summary>Starts <see cref="ExchangeBlocks"/> after the work queued so far and returns at once; the buffers belong to it until it completes.</summary>
    CollectiveRequest ExchangeBlocksAsync(Tensor send, IReadOnlyList<ExchangeBlock> sendBlocks, Tensor receive, IReadOnlyList<ExchangeBlock> receiveBlocks);
}
