namespace MoeSharp.Telemetry;

/// <summary>
/// The exchanges of one dispatch step that <see cref="TrafficReport.ExchangeWaitMilliseconds"/> times.
/// </summary>
public enum TrafficExchange
{
    /// <summary>The count exchange of dispatch (every rank learns how many rows it receives).</summary>
    Counts = 0,

    /// <summary>The row all-to-all-v of dispatch: token rows to the ranks that own their experts.</summary>
    RowsForward = 1,

    /// <summary>The row all-to-all-v of combine: expert outputs back to the ranks their tokens came from.</summary>
    RowsBack = 2,
}
