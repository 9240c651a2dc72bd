using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// The experts' say in where a dispatch writes their routed rows: where rows stay on the rank (EP = 1), the dispatch's
/// gather and the combine backward's can write straight into the layout the experts compute in (the padded experts'
/// bfloat16 rows, expert j's i-th row at row <c>j·capacity + i</c>, zeros after its rows) instead of the packed
/// expert-major float32 rows that the experts would pad and cast in a pass of their own. Combine and dispatch's
/// backward then read the experts' padded float32 outputs through the same row maps, so no pass converts between the
/// two layouts. Where it does not apply (rows move between ranks, capacity mode, an FP8 wire, bfloat16 tokens, or
/// <see cref="Place"/> declines) the dispatch keeps the packed rows.
/// </summary>
internal interface IRoutedRowPlacement
{
    /// <summary>
    /// The padded layout for these rows per local expert (alignment padding included), or null to keep the packed
    /// expert-major rows. The layout's device table belongs to the caller.
    /// </summary>
    PaddedGroups? Place(ReadOnlySpan<int> rowsPerLocalExpert);

    /// <summary>Token rows scattered into the placed bfloat16 rows (<see cref="IPaddedExpertKernels.PlaceTokenRows"/>):
    /// the dispatch's gather, and the combine backward's.</summary>
    /// <param name="tokens"><c>[*, D]</c> float32 token rows.</param>
    /// <param name="tokenRowOffset">Row of <paramref name="tokens"/> of token 0.</param>
    /// <param name="map">Where each token's rows go, and their scale.</param>
    /// <param name="rows"><c>[capacity·E, D]</c> bfloat16.</param>
    void WriteTokenRows(Tensor tokens, int tokenRowOffset, TokenScatter map, Tensor rows);
}
