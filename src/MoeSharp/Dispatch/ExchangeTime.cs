namespace MoeSharp.Dispatch;

/// <summary>
/// When one rank entered an exchange (a <see cref="System.Diagnostics.Stopwatch"/> timestamp) and how long it spent
/// in it; zeros when traffic is not collected. Telemetry's per-peer waits compare the start times across ranks.
/// </summary>
internal readonly record struct ExchangeTime(long Started, double Milliseconds);
