using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Collectives;

/// <summary>The rank-ordered all-reduce of a host tensor of rows, whatever its row dtype.</summary>
internal static class HostTensorAllReduce
{
    /// <summary>
    /// Sums a float32 or bfloat16 host tensor over <paramref name="group"/> in place, in rank order
    /// (<see cref="IProcessGroup.AllReduceSum(Span{float})"/>). bfloat16 values are widened, summed in float32 and
    /// rounded once.
    /// </summary>
    /// <exception cref="ArgumentException">The tensor is not float32 or bfloat16.</exception>
    public static void AllReduceSumOnHost(this IProcessGroup group, Tensor values)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(values);
        switch (values.DType)
        {
            case DType.Float32:
                group.AllReduceSum(values.AsSpan<float>());
                break;
            case DType.BFloat16:
                float[] wide = BFloat16Rows.Widen(values.AsSpan<BFloat16>());
                group.AllReduceSum(wide);
                BFloat16Rows.Narrow(wide, values.AsSpan<BFloat16>());
                break;
            default:
                throw new ArgumentException($"the rows to sum must be float32 or bfloat16; got {values}", nameof(values));
        }
    }
}
