"""One screen per job at the till: checkout, refund, the day's list, settings; the receipt."""
