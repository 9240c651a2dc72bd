namespace MoeSharp.Dispatch;

/// <summary>How dispatch sends the <c>x</c> rows to the ranks that own their experts
/// (<see cref="TokenDispatcherConfig.WireFormat"/>).</summary>
public enum RowWireFormat
{
    /// <summary>In the dtype of <c>x</c> (float32 or bfloat16), unchanged.</summary>
    Native,

    /// <summary>
    /// FP8 E4M3 codes with one power-of-two float32 scale per row per 128 columns
    /// (<see cref="Quantization.Fp8WireRows"/>), quantised once on the sending rank and dequantised to the dtype of
    /// <c>x</c> on the receiving one; combine and the backward passes stay in the row dtype.
    /// </summary>
    Fp8E4M3,
}
