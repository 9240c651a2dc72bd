using MoeSharp.Tensors;

namespace MoeSharp.Collectives;

/// <summary>
/// A device process group over a host one: device tensors are copied to the host, exchanged by the host group and
/// copied back. For ranks that share one GPU (NCCL needs one GPU per rank) and for ILGPU's CPU accelerator; correct on
/// any backend whose tensors keep their storage in a <see cref="DeviceBuffer"/>, but every exchange crosses the host.
/// Host tensors and the span collectives go straight to the inner group.
/// </summary>
/// <remarks>
/// Only the elements the counts name cross: the send tensor's first <c>sum(sendCounts)</c> elements go down, the
/// receive tensor's first <c>sum(receiveCounts)</c> come back, and its elements after them are left as they were.
/// </remarks>
/// <param name="inner">The host group whose ranks are this group's ranks.</param>
public sealed class HostStagedProcessGroup(IProcessGroup inner) : IProcessGroup
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
    public void AllToAll<T>(ReadOnlySpan<T> send, Span<T> receive)
        where T : unmanaged => inner.AllToAll(send, receive);

    /// <inheritdoc />
    public void AllToAllV<T>(
        ReadOnlySpan<T> send,
        ReadOnlySpan<int> sendCounts,
        Span<T> receive,
        ReadOnlySpan<int> receiveCounts
    )
        where T : unmanaged => inner.AllToAllV(send, sendCounts, receive, receiveCounts);

    /// <inheritdoc />
    public CollectiveRequest AllToAllVAsync<T>(
        ReadOnlyMemory<T> send,
        int[] sendCounts,
        Memory<T> receive,
        int[] receiveCounts
    )
        where T : unmanaged => inner.AllToAllVAsync(send, sendCounts, receive, receiveCounts);

    /// <inheritdoc />
    public void AllGather<T>(ReadOnlySpan<T> send, Span<T> receive)
        where T : unmanaged => inner.AllGather(send, receive);

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
    public override string ToString() => $"HostStagedProcessGroup({inner})";

    /// <inheritdoc />
    public void AllToAllV(Tensor send, ReadOnlySpan<int> sendCounts, Tensor receive, ReadOnlySpan<int> receiveCounts)
    {
        ArgumentNullException.ThrowIfNull(send);
        ArgumentNullException.ThrowIfNull(receive);
        Tensor hostSend = StageDown(send, Total(sendCounts, send.ElementCount));
        Tensor hostReceive = receive.IsOnHost ? receive : Tensor.Uninitialized(receive.DType, receive.ElementCount);
        inner.AllToAllV(hostSend, sendCounts, hostReceive, receiveCounts);
        if (!receive.IsOnHost)
            StageUp(hostReceive, receive, Total(receiveCounts, receive.ElementCount));
    }

    /// <inheritdoc />
    /// <remarks>
    /// Runs the exchange before returning: every rank calls this at the same point, so that is a valid (if
    /// unoverlapped) schedule.
    /// </remarks>
    public CollectiveRequest AllToAllVAsync(Tensor send, int[] sendCounts, Tensor receive, int[] receiveCounts)
    {
        AllToAllV(send, sendCounts, receive, receiveCounts);
        return CollectiveRequest.Completed;
    }

    /// <inheritdoc />
    public void AllReduceSum(Tensor values)
    {
        ArgumentNullException.ThrowIfNull(values);
        Tensor host = values.ToHost();
        inner.AllReduceSum(host);
        if (!values.IsOnHost)
            StageUp(host, values, values.ElementCount);
    }

    /// <summary>A host tensor as long as <paramref name="tensor"/>, its first elements copied.</summary>
    private static Tensor StageDown(Tensor tensor, long elements)
    {
        if (tensor.IsOnHost)
            return tensor;
        var host = Tensor.Uninitialized(tensor.DType, tensor.ElementCount);
        tensor.DeviceBuffer!.CopyToHost(0, host.AsBytes()[..ByteCount(tensor, elements)]);
        return host;
    }

    /// <summary>Copies the first <paramref name="elements"/> of <paramref name="host"/> to the device.</summary>
    private static void StageUp(Tensor host, Tensor device, long elements) =>
        device.DeviceBuffer!.CopyFromHost(host.AsBytes()[..ByteCount(device, elements)], 0);

    /// <summary>The elements the counts name, clamped to the tensor (the inner group rejects bad counts).</summary>
    private static long Total(ReadOnlySpan<int> counts, int elements)
    {
        long total = 0;
        foreach (int count in counts)
            total += Math.Max(count, 0);
        return Math.Min(total, elements);
    }

    private static int ByteCount(Tensor tensor, long elements) => checked((int)(elements * tensor.DType.SizeOf()));
}
