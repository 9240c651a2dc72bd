using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// The dispatcher for EP = 1 (and SP = 1): every expert is local (<see cref="LocalExchange"/>), so dispatch is one
/// gather into the expert-major layout and combine one ordered gather-reduce, with no exchange and no extra copy.
/// </summary>
public sealed class LocalTokenDispatcher : TokenDispatcher
{
    /// <summary>Creates a local dispatcher.</summary>
    /// <param name="config">What to route; all E experts are local.</param>
    /// <param name="kernels">Compute backend; the host kernels when null.</param>
    /// <param name="pool">
    /// The host kernels' pool when <paramref name="kernels"/> is null (a new pool when this is null too); unused
    /// otherwise, since tensors then come from the kernels' device (<see cref="TokenDispatcher.Allocator"/>).
    /// </param>
    public LocalTokenDispatcher(TokenDispatcherConfig config, IMoeKernels? kernels = null, TensorPool? pool = null)
        : base(config, epSize: 1, epRank: 0, spSize: 1, spRank: 0, kernels, pool, k => new LocalExchange(k)) { }
}
