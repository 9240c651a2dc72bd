using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Nccl;

/// <summary>
/// The device half of <see cref="NcclProcessGroup.AllReduceSum(Tensor)"/>: scratch for every rank's gathered copy and
/// the kernel that adds them in rank order, so the sum never leaves the GPU. The ILGPU backend's dispatch kernels
/// provide it; without one the group sums on the host.
/// </summary>
public interface IRankOrderedSum
{
    /// <summary>A device tensor of <paramref name="elements"/> for the gathered copies (on this rank's GPU, with a native pointer).</summary>
    Tensor RentGathered(DType dtype, int elements);

    /// <summary>
    /// <c>values[i] = ((g[0][i] + g[1][i]) + g[2][i]) + …</c> over the <paramref name="ranks"/> rows of
    /// <paramref name="gathered"/> (<c>[ranks, n]</c>), in float32, bfloat16 widened and rounded once at the end — the
    /// host's rank-order sum, bit for bit.
    /// </summary>
    void SumInRankOrder(Tensor gathered, int ranks, Tensor values);

    /// <summary>Hands the scratch back (stream-ordered: the sum queued before may still read it).</summary>
    void ReturnGathered(Tensor gathered);
}
