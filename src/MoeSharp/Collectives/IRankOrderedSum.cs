using MoeSharp.Tensors;

namespace MoeSharp.Collectives;

/// <summary>
/// The kernel half of a device group's <see cref="ITensorCollectives.AllReduceSum"/>, offered by a compute backend:
/// scratch for every rank's gathered copy and the kernel that adds the copies in rank order, so a group that gathers
/// on the device (NCCL's) sums there too instead of on the host. The group gathers; the backend adds.
/// </summary>
public interface IRankOrderedSum
{
    /// <summary>
    /// A device tensor of <paramref name="elements"/> for the gathered copies, on this rank's device and reachable by
    /// the group's transport (for NCCL: with a native pointer).
    /// </summary>
    Tensor RentGathered(DType dtype, int elements);

    /// <summary>
    /// <c>values[i] = ((g[0][i] + g[1][i]) + g[2][i]) + …</c> over the <paramref name="ranks"/> rows of
    /// <paramref name="gathered"/> (<c>[ranks, n]</c>), in float32, bfloat16 widened and rounded once at the end: the
    /// host groups' rank-order sum, bit for bit. Queued on the rank's stream after the gather.
    /// </summary>
    void SumInRankOrder(Tensor gathered, int ranks, Tensor values);

    /// <summary>Hands the scratch back (stream-ordered: the sum queued before may still read it).</summary>
    void ReturnGathered(Tensor gathered);
}
