using MoeSharp.Collectives;
using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda;

/// <summary>
/// Device collectives through host memory: device tensors are copied to the host, exchanged with a host process
/// group's collectives, and copied back. For ranks that share one GPU (NCCL needs one GPU per rank) and for ILGPU's
/// CPU accelerator; correct on any layout, but every exchange crosses the host. Host collectives go straight to the
/// inner group. Its block exchange packs each peer's blocks in order into one host message, so dispatchers take the
/// same block-exchange path here (and in tests on the CPU accelerator) as on NCCL.
/// </summary>
/// <param name="inner">The host group whose ranks are this group's ranks.</param>
public sealed class HostStagedProcessGroup(IProcessGroup inner) : IProcessGroup, IDeviceCollectives, IDeviceBlockExchange
{
    /// <inheritdoc />
    public int Rank => inner.Rank;

    /// <inheritdoc />
    public int Size => inner.Size;

    /// <inheritdoc />
    public IReadOnlyList<int> WorldRanks => inner.WorldRanks;

    /// <inheritdoc />
    public TimeSpan Timeout => inner.Timeout;

    /// <inheritdoc />
    public IProcessGroup Split(int color, int key) => new HostStagedProcessGroup(inner.Split(color, key));

    /// <inheritdoc />
    public void Barrier() => inner.Barrier();

    /// <inheritdoc />
    public void AllToAll<T>(ReadOnlySpan<T> send, Span<T> receive) where T : unmanaged => inner.AllToAll(send, receive);

    /// <inheritdoc />
    public void AllToAllV<T>(ReadOnlySpan<T> send, ReadOnlySpan<int> sendCounts, Span<T> receive, ReadOnlySpan<int> receiveCounts) where T : unmanaged
        => inner.AllToAllV(send, sendCounts, receive, receiveCounts);

    /// <inheritdoc />
    public CollectiveRequest AllToAllVAsync<T>(ReadOnlyMemory<T> send, int[] sendCounts, Memory<T> receive, int[] receiveCounts) where T : unmanaged
        => inner.AllToAllVAsync(send, sendCounts, receive, receiveCounts);

    /// <inheritdoc />
    public void AllGather<T>(ReadOnlySpan<T> send, Span<T> receive) where T : unmanaged => inner.AllGather(send, receive);

    /// <inheritdoc />
    public void AllReduceSum(Span<float> values) => inner.AllReduceSum(values);

    /// <inheritdoc />
    public void AllReduceSum(Span<double> values) => inner.AllReduceSum(values);

    /// <inheritdoc />
    public void AllReduceSum(Span<long> values) => inner.AllReduceSum(values);

    /// <inheritdoc />
    public void Abort(Exception error) => inner.Abort(error);

    /// <inheritdoc />
    public void Dispose() => inner.Dispose();

    /// <inheritdoc />
    public void AllToAllV(Tensor send, ReadOnlySpan<int> sendCounts, Tensor receive, ReadOnlySpan<int> receiveCounts)
    {
        Tensor hostSend = send.ToHost();
        var hostReceive = Tensor.Uninitialized(receive.DType, receive.ElementCount);
        if (send.DType == DType.BFloat16)
            inner.AllToAllV<BFloat16>(hostSend.AsSpan<BFloat16>(), sendCounts, hostReceive.AsSpan<BFloat16>(), receiveCounts);
        else
            inner.AllToAllV<float>(hostSend.AsSpan<float>(), sendCounts, hostReceive.AsSpan<float>(), receiveCounts);
        receive.DeviceBuffer!.CopyFromHost(hostReceive.AsBytes(), 0);
    }

    /// <inheritdoc />
    public CollectiveRequest AllToAllVAsync(Tensor send, int[] sendCounts, Tensor receive, int[] receiveCounts)
    {
        // Every rank calls this at the same point, so running the exchange now is a valid (if unoverlapped) schedule.
        AllToAllV(send, sendCounts, receive, receiveCounts);
        return CollectiveRequest.Completed;
    }

    /// <inheritdoc />
    public void ExchangeBlocks(Tensor send, IReadOnlyList<ExchangeBlock> sendBlocks, Tensor receive, IReadOnlyList<ExchangeBlock> receiveBlocks)
    {
        ArgumentNullException.ThrowIfNull(send);
        ArgumentNullException.ThrowIfNull(receive);
        ArgumentNullException.ThrowIfNull(sendBlocks);
        ArgumentNullException.ThrowIfNull(receiveBlocks);
        if (send.DType != receive.DType) throw new ArgumentException($"send is {send.DType} but receive is {receive.DType}", nameof(receive));
        int size = send.DType.SizeOf();
        byte[] hostSend = send.ToHost().AsBytes().ToArray();
        // Each peer's blocks, in order, back to back: one all-to-all-v message per peer.
        var sendCounts = new int[Size];
        foreach (ExchangeBlock b in sendBlocks) sendCounts[Peer(b, nameof(sendBlocks))] += checked((int)(b.Count * size));
        var receiveCounts = new int[Size];
        foreach (ExchangeBlock b in receiveBlocks) receiveCounts[Peer(b, nameof(receiveBlocks))] += checked((int)(b.Count * size));
        var packed = new byte[sendCounts.Sum()];
        var at = Starts(sendCounts);
        foreach (ExchangeBlock b in sendBlocks)
        {
            hostSend.AsSpan((int)(b.Offset * size), (int)(b.Count * size)).CopyTo(packed.AsSpan(at[b.Peer]));
            at[b.Peer] += (int)(b.Count * size);
        }
        var arrived = new byte[receiveCounts.Sum()];
        inner.AllToAllV<byte>(packed, sendCounts, arrived, receiveCounts);
        byte[] hostReceive = receive.ToHost().AsBytes().ToArray();
        at = Starts(receiveCounts);
        foreach (ExchangeBlock b in receiveBlocks)
        {
            arrived.AsSpan(at[b.Peer], (int)(b.Count * size)).CopyTo(hostReceive.AsSpan((int)(b.Offset * size)));
            at[b.Peer] += (int)(b.Count * size);
        }
        receive.DeviceBuffer!.CopyFromHost(hostReceive, 0);
    }

    /// <inheritdoc />
    public CollectiveRequest ExchangeBlocksAsync(Tensor send, IReadOnlyList<ExchangeBlock> sendBlocks, Tensor receive, IReadOnlyList<ExchangeBlock> receiveBlocks)
    {
        // As AllToAllVAsync: every rank calls it at the same point, so running it now is a valid schedule.
        ExchangeBlocks(send, sendBlocks, receive, receiveBlocks);
        return CollectiveRequest.Completed;
    }

    private int Peer(ExchangeBlock block, string argument)
        => (uint)block.Peer < (uint)Size && block.Offset >= 0 && block.Count > 0 ? block.Peer
            : throw new ArgumentOutOfRangeException(argument, block, $"rank {Rank}: a block must name a peer in [0, {Size}) and a non-empty run");

    private static int[] Starts(int[] counts)
    {
        var starts = new int[counts.Length];
        for (int i = 1; i < counts.Length; i++) starts[i] = starts[i - 1] + counts[i - 1];
        return starts;
    }

    /// <inheritdoc />
    public void AllReduceSum(Tensor values)
    {
        Tensor host = values.ToHost();
        if (host.DType == DType.BFloat16)
        {
            float[] wide = BFloat16Rows.Widen(host.AsSpan<BFloat16>());
            inner.AllReduceSum(wide);
            BFloat16Rows.Narrow(wide, host.AsSpan<BFloat16>());
        }
        else
        {
            inner.AllReduceSum(host.AsSpan<float>());
        }
        values.DeviceBuffer!.CopyFromHost(host.AsBytes(), 0);
    }
}
