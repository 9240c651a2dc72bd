using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Collectives;

/// <summary>
/// The tensor collectives of a group whose ranks keep their rows in host memory (in-process threads, MPI): each call is
/// the group's span collective on the tensor's own storage, typed by the tensor's dtype, so no element is copied or
/// staged on the way. The dtype switch lives here, once, instead of in every caller.
/// </summary>
internal static class HostTensorCollectives
{
    /// <summary><see cref="ITensorCollectives.AllToAllV"/> through the span all-to-all-v of the group.</summary>
    public static void AllToAllV(
        IProcessGroup group,
        Tensor send,
        ReadOnlySpan<int> sendCounts,
        Tensor receive,
        ReadOnlySpan<int> receiveCounts
    )
    {
        CheckPair(group, send, receive);
        switch (send.DType)
        {
            case DType.Float32:
                group.AllToAllV<float>(send.AsSpan<float>(), sendCounts, receive.AsSpan<float>(), receiveCounts);
                break;
            case DType.BFloat16:
                group.AllToAllV<BFloat16>(
                    send.AsSpan<BFloat16>(),
                    sendCounts,
                    receive.AsSpan<BFloat16>(),
                    receiveCounts
                );
                break;
            case DType.Int32:
                group.AllToAllV<int>(send.AsSpan<int>(), sendCounts, receive.AsSpan<int>(), receiveCounts);
                break;
            case DType.Int64:
                group.AllToAllV<long>(send.AsSpan<long>(), sendCounts, receive.AsSpan<long>(), receiveCounts);
                break;
            default:
                throw UnknownDType(send);
        }
    }

    /// <summary><see cref="ITensorCollectives.AllToAllVAsync"/> through <paramref name="group"/>'s span form.</summary>
    public static CollectiveRequest AllToAllVAsync(
        IProcessGroup group,
        Tensor send,
        int[] sendCounts,
        Tensor receive,
        int[] receiveCounts
    )
    {
        CheckPair(group, send, receive);
        return send.DType switch
        {
            DType.Float32 => group.AllToAllVAsync<float>(
                send.AsMemory<float>(),
                sendCounts,
                receive.AsMemory<float>(),
                receiveCounts
            ),
            DType.BFloat16 => group.AllToAllVAsync<BFloat16>(
                send.AsMemory<BFloat16>(),
                sendCounts,
                receive.AsMemory<BFloat16>(),
                receiveCounts
            ),
            DType.Int32 => group.AllToAllVAsync<int>(
                send.AsMemory<int>(),
                sendCounts,
                receive.AsMemory<int>(),
                receiveCounts
            ),
            DType.Int64 => group.AllToAllVAsync<long>(
                send.AsMemory<long>(),
                sendCounts,
                receive.AsMemory<long>(),
                receiveCounts
            ),
            _ => throw UnknownDType(send),
        };
    }

    /// <summary>
    /// <see cref="ITensorCollectives.AllReduceSum"/> through <paramref name="group"/>'s float32 span sum: bfloat16 is
    /// widened, summed in float32 in rank order and rounded once.
    /// </summary>
    public static void AllReduceSum(IProcessGroup group, Tensor values)
    {
        CollectiveTensorChecks.RequireHost(group, values, nameof(values));
        CollectiveTensorChecks.RequireSummable(group, values);
        if (values.DType == DType.Float32)
        {
            group.AllReduceSum(values.AsSpan<float>());
            return;
        }
        float[] wide = BFloat16Rows.Widen(values.AsSpan<BFloat16>());
        group.AllReduceSum(wide.AsSpan());
        BFloat16Rows.Narrow(wide, values.AsSpan<BFloat16>());
    }

    private static void CheckPair(IProcessGroup group, Tensor send, Tensor receive)
    {
        CollectiveTensorChecks.RequireHost(group, send, nameof(send));
        CollectiveTensorChecks.RequireHost(group, receive, nameof(receive));
        CollectiveTensorChecks.RequireSameDType(group, send, receive);
    }

    private static ArgumentException UnknownDType(Tensor tensor) =>
        new($"a collective cannot move {tensor}: unknown dtype {tensor.DType}", nameof(tensor));
}
