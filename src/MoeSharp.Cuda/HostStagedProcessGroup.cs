using MoeSharp.Collectives;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda;

/// <summary>
/// Device collectives through host memory: device tensors are copied to the host, exchanged with a host process
/// group's collectives, and copied back. For ranks that share one GPU (NCCL needs one GPU per rank) and for ILGPU's
/// CPU accelerator; correct on any layout, but every exchange crosses the host. Host collectives go straight to the
/// inner group.
/// </summary>
/// <param name="inner">The host group whose ranks are this group's ranks.</param>
public sealed class HostStagedProcessGroup(IProcessGroup inner) : IProcessGroup, IDeviceCollectives
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
        switch (send.DType)
        {
            case DType.BFloat16:
                inner.AllToAllV<BFloat16>(hostSend.AsSpan<BFloat16>(), sendCounts, hostReceive.AsSpan<BFloat16>(), receiveCounts);
                break;
            case DType.Int32:
                inner.AllToAllV<int>(hostSend.AsSpan<int>(), sendCounts, hostReceive.AsSpan<int>(), receiveCounts);
                break;
            default:
                inner.AllToAllV<float>(hostSend.AsSpan<float>(), sendCounts, hostReceive.AsSpan<float>(), receiveCounts);
                break;
        }
        // Only the received elements: the rest of the buffer is not the exchange's to overwrite.
        long received = 0;
        foreach (int count in receiveCounts) received += count;
        receive.DeviceBuffer!.CopyFromHost(hostReceive.AsBytes().Slice(0, checked((int)(received * receive.DType.SizeOf()))), 0);
    }

    /// <inheritdoc />
    public CollectiveRequest AllToAllVAsync(Tensor send, int[] sendCounts, Tensor receive, int[] receiveCounts)
    {
        // Every rank calls this at the same point, so running the exchange now is a valid (if unoverlapped) schedule.
        AllToAllV(send, sendCounts, receive, receiveCounts);
        return CollectiveRequest.Completed;
    }

    /// <inheritdoc />
    public void AllReduceSum(Tensor values)
    {
        Tensor host = values.ToHost();
        inner.AllReduceSumOnHost(host);
        values.DeviceBuffer!.CopyFromHost(host.AsBytes(), 0);
    }
}
